"""Progress bars of the inner loops (adaptation, inversion, each sampling stage).

They are transient (gone when done). A command line decides whether they show, when it starts (eval.errors.cli_main
reads `VMC_INNER_BARS`): the worker processes of a parallel eval.run hide them (`VMC_INNER_BARS=0`, set by their
launcher), so that the workers' `items` bars stay readable on a shared terminal instead of overwriting each other.
"""

from __future__ import annotations

from tqdm.auto import tqdm

ENV = "VMC_INNER_BARS"
_inner_bars = {"shown": True}


def show_inner_bars(flag: bool):
    _inner_bars["shown"] = flag


def shown(enabled: bool = True) -> bool:
    return enabled and _inner_bars["shown"]


def inner_bar(iterable, desc: str, enabled: bool = True):
    return tqdm(iterable, desc=desc, disable=not shown(enabled), leave=False)
