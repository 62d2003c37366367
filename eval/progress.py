"""Progress: the inner loops' bars (adaptation, inversion, each sampling stage) and what eval.run's `items` bar
says while it works: the adaptation under way with its steps, a clock that runs during it, and an ETA that counts
the adaptations still to come as well as the videos.

The inner bars are transient (gone when done). A command line decides whether they show, when it starts
(eval.errors.cli_main reads `VMC_INNER_BARS`): the worker processes of a parallel eval.run hide them
(`VMC_INNER_BARS=0`, set by their launcher), so that the workers' `items` bars stay readable on a shared terminal.
An inner bar reports its steps through `report` also where it is hidden; the engine listens while a method
adapts. The ETA is the sum, over what is left, of each method's mean adaptation and video times measured so far
in this process; while a method still left has none measured yet, it is a lower bound (shown `≥`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager

from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm

_listener = None
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


ENV = "VMC_INNER_BARS"
_inner_bars = {"shown": True}


def show_inner_bars(flag: bool):
    _inner_bars["shown"] = flag


def shown(enabled: bool = True) -> bool:
    return enabled and _inner_bars["shown"]


def inner_bar(iterable, desc: str, enabled: bool = True):
    """A bar over `iterable` whose steps also reach eval.run's bar (`report`), shown or not."""
    total = len(iterable)
    return auto_tqdm(_reported(iterable, desc, total), desc=desc, total=total, disable=not shown(enabled),
                     leave=False)


def _reported(iterable, desc: str, total: int):
    for done, x in enumerate(iterable, 1):
        yield x
        report(desc, done, total)


def report(desc: str, done: int, total: int):
    """An inner loop's progress: `done` of `total` steps of `desc` (e.g. "vmc adaptation")."""
    if _listener is not None:
        _listener(desc, done, total)


class RunProgress:
    """The `items` bar's postfix and ETA for `pending`, the (method label, case id) of each item left, in order."""

    def __init__(self, bar: tqdm, pending: list[tuple[str, str]]):
        self.bar = bar
        self.items_left = Counter(label for label, _ in pending)
        self.adaptations_left = Counter(label for label, _ in dict.fromkeys(pending))
        self.adapt_s: dict[str, list[float]] = {}
        self.item_s: dict[str, list[float]] = {}
        self.where = ""
        self.adapting_since: float | None = None
        self.step: tuple[str, int, int] | None = None
        self._lock = threading.RLock()  # the ticker thread reads what the run's thread changes
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self):  # tqdm redraws only when told: keep the clock and the ETA moving during long steps
        while not self._stop.wait(1.0):
            self.show()

    def close(self):
        self._stop.set()
        self._ticker.join()

    @contextmanager
    def adapting(self, label: str, case: str):
        global _listener
        self.where, self.adapting_since, self.step = f"{label} / {case}", time.perf_counter(), None
        _listener = self._on_step
        try:
            yield
        finally:
            _listener = None
            self.adapt_s.setdefault(label, []).append(time.perf_counter() - self.adapting_since)
            self.adaptations_left[label] -= 1
            self.adapting_since = self.step = None
            self.show()

    def _on_step(self, desc: str, done: int, total: int):
        self.step = (desc, done, total)

    def item_done(self, label: str, case: str, seconds: float):
        with self._lock:
            self.item_s.setdefault(label, []).append(seconds)
            self.items_left[label] -= 1
            self.where = f"{label} / {case}"
            self.bar.update()
        self.show()

    def eta(self) -> tuple[float, bool]:
        """(seconds left, whether that is only a lower bound)."""
        left, partial = 0.0, False
        current = self.where.split(" / ")[0] if self.adapting_since is not None else None
        for label, n in self.adaptations_left.items():
            n -= label == current
            if n > 0:
                if label in self.adapt_s:
                    left += n * sum(self.adapt_s[label]) / len(self.adapt_s[label])
                else:
                    partial = True
        if current is not None:
            spent = time.perf_counter() - self.adapting_since
            if current in self.adapt_s:  # a loop's steps are one part of an adaptation (training, then inversion)
                left += max(0.0, sum(self.adapt_s[current]) / len(self.adapt_s[current]) - spent)
            elif self.step and self.step[1] > 0:
                left += spent / self.step[1] * (self.step[2] - self.step[1])
            else:
                partial = True
        for label, n in self.items_left.items():
            if n > 0:
                if label in self.item_s:
                    left += n * sum(self.item_s[label]) / len(self.item_s[label])
                else:
                    partial = True
        return left, partial

    def show(self):
        with self._lock:
            text = self.where
            if self.adapting_since is not None:
                step = f" {self.step[0]} {self.step[1]}/{self.step[2]}" if self.step else ""
                text += f": adapting{step}"
            left, partial = self.eta()
            if left > 0 or not partial:
                text += f", eta {'≥ ' if partial else ''}{tqdm.format_interval(left)}"
            self.bar.set_postfix_str(text)
