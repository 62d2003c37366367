"""The metric contract: a metric is a small class that scores one sample and declares what its numbers mean.

Every reader of scores (summaries, the table, eval.compare, eval.validity, the dashboard) takes a field's
direction and range from its declaration here, never from its name, so a metric added by another package
through the `vmc_suite.metrics` entry point is read correctly everywhere with no other change.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Field:
    """One number a metric returns: what it means, which way is better, and the interval its values lie in
    (summaries clip confidence intervals to it)."""

    meaning: str
    higher_is_better: bool = True
    range: tuple[float, float] = (-math.inf, math.inf)
    checked_by: str | None = None  # the ground-truth field eval.validity correlates it with, where one exists
    label: str | None = None  # its name in a paper's table or figure (eval.table, eval.plot); else the field name
    headline: bool = True  # shown by default in tables and the leaderboard (False: a variant of another field)

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def describe(self) -> dict:
        return {"meaning": self.meaning, "direction": self.direction, "range": list(self.range),
                **({"checked_by": self.checked_by} if self.checked_by else {})}


@dataclass(frozen=True)
class Sample:
    """What a metric scores: a video's uint8 T×H×W×3 frames and its target prompt, with the case's reference
    clip (and the reference's own caption, and its first frame's foreground mask, where the benchmark gives
    them) when there is one. `memo` holds work that several metrics of the sample share (point tracks), computed
    by the first that needs it."""

    frames: np.ndarray
    prompt: str
    reference: np.ndarray | None = None
    reference_prompt: str | None = None
    memo: dict = field(default_factory=dict, compare=False, repr=False)
    reference_mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # bool H×W


class Metric(ABC):
    """Subclasses set `name` and `fields` and implement `spec` and `score`.

    `score(sample)` returns (values, details): values maps every field to a float or to a MetricUndefined
    carrying the reason; details holds whatever a drill-down page may draw (tracks, per-frame values).
    `spec()` is everything that produced the numbers (model, weights, preprocessing, frames, dtype): two
    numbers are comparable exactly when their specs match. A metric with `needs_reference` is scored only
    for samples that have a reference. A metric with a `batch_size` encodes the frames of several videos
    together in `score_many` (CLIP); the others are scored video by video, on worker threads where a
    command has them."""

    name: ClassVar[str]
    fields: ClassVar[dict[str, Field]]
    needs_reference: ClassVar[bool] = False
    default: ClassVar[bool] = True  # computed unless --metrics says otherwise
    batch_size: int | None = None

    @classmethod
    def wanted(cls, options, defaults: dict) -> bool:
        """Whether to compute it when --metrics is not given (`defaults`: the benchmark's `metrics` section)."""
        return cls.default

    @classmethod
    def add_options(cls, group) -> None:
        """Add this metric's command-line options to an argparse group (shared by eval.run, eval.score and
        eval.rescore)."""

    @classmethod
    def from_options(cls, options, defaults: dict, device: str | None) -> "Metric":
        """The metric the parsed options describe; `defaults`: the benchmark's `metrics` section."""
        return cls()

    @abstractmethod
    def spec(self) -> dict:
        """Everything that produced the numbers."""

    @abstractmethod
    def score(self, sample: Sample) -> tuple[dict, dict]:
        """(values, details) of one sample."""

    def score_many(self, samples: list[Sample]) -> list[tuple[dict, dict]]:
        """`score` for each sample; a metric that batches work across videos (CLIP) overrides it."""
        return [self.score(s) for s in samples]

    def applies(self, sample: Sample) -> bool:
        return sample.reference is not None or not self.needs_reference
