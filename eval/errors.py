"""User-facing errors: every bad input ends as one line naming the file and the problem, and a non-zero exit."""

from __future__ import annotations

import functools
import sys


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line (never a traceback)."""


class VideoError(UserError):
    """A video that cannot be read or written."""


class ManifestError(UserError):
    """A benchmark manifest that does not validate."""


class MetricUndefined(Exception):
    """A metric that has no value for this input (e.g. temporal consistency of one frame); recorded with its reason."""


def cli_main(fn):
    """Wrap a CLI entry point: a UserError prints `error: …` on stderr and exits with status 2."""

    @functools.wraps(fn)
    def wrapper(argv=None):
        try:
            return fn(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: finished items are kept; rerun the same command to resume", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
