"""Progress bars of the inner loops (adaptation, inversion, each sampling stage).

They are transient (gone when done). Worker processes of a parallel eval.run hide them (`VMC_INNER_BARS=0`), so
that the workers' `items` bars stay readable on a shared terminal instead of overwriting each other.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

from eval.progress import report

ENV = "VMC_INNER_BARS"


def shown(enabled: bool = True) -> bool:
    return enabled and os.environ.get(ENV, "1") != "0"


def inner_bar(iterable, desc: str, enabled: bool = True):
    """A bar over `iterable` whose steps also reach eval.run's bar (eval.progress), shown or not."""
    total = len(iterable)
    return tqdm(_reported(iterable, desc, total), desc=desc, total=total, disable=not shown(enabled), leave=False)


def _reported(iterable, desc: str, total: int):
    for done, x in enumerate(iterable, 1):
        yield x
        report(desc, done, total)
