"""User-facing errors: every bad input ends as one line naming the file and the problem, and a non-zero exit."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

from eval import progress


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line (never a traceback)."""


class VideoError(UserError):
    """A video that cannot be read or written."""


class ManifestError(UserError):
    """A benchmark manifest that does not validate."""


class MetricUndefined(Exception):
    """A metric that has no value for this input (e.g. temporal consistency of one frame); recorded with its reason."""


def read_json(path: Path, encoding: str = "utf-8"):
    """A JSON file's content, or a UserError naming the file and where its JSON breaks."""
    try:
        return json.loads(Path(path).read_text(encoding=encoding))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def cli_main(fn):
    """Wrap a CLI entry point: a UserError prints `error: …` on stderr and exits with status 2. Where a command
    starts, it reads what the environment says for the whole process: whether inner progress bars show
    (eval.progress)."""

    @functools.wraps(fn)
    def wrapper(argv=None):
        progress.show_inner_bars(os.environ.get(progress.ENV, "1") != "0")
        try:
            return fn(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: finished items are kept; rerun the same command to resume", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
