"""What a method lets `eval.tune` search: each tunable setting as a `Param`, centred on the official value.

A method declares its space in `Method.search_space()`, built by the families from the settings each declares
(`eval.settings.Setting`, whose `search` is a Param: steps and learning rate for per-clip tuning, the guidance
weight and the guided share of steps for guidance), and takes chosen values through `Method.configure(settings)`,
which `eval.run --settings FILE` calls too, so a tuned setting and a hand-set one travel the same way, are checked
against the same declarations and land in run.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """A range low..high (log-spaced when `log`; whole numbers when `integer`) or a list of `choices`; `centre` is
    the official value, the first trial of every tuning."""
    centre: float | int | str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()

    def __post_init__(self):
        if self.choices:
            if self.centre not in self.choices:
                raise ValueError(f"centre {self.centre!r} is not one of the choices {self.choices}")
        elif self.low is None or self.high is None or not self.low <= self.centre <= self.high:
            raise ValueError(f"centre {self.centre!r} is not within [{self.low}, {self.high}]")
        elif self.log and self.low <= 0:
            raise ValueError(f"a log-spaced range must be positive, got low {self.low}")

    @classmethod
    def around(cls, centre: float, factor: float) -> Param:
        """centre/factor .. centre·factor, log-spaced (a learning rate, a weight)."""
        return cls(float(centre), centre / factor, centre * factor, log=True)

    def distribution(self):
        """The Optuna distribution the sampler draws this setting from."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"[{self.low:g}, {self.high:g}]{' log' if self.log else ''}{' int' if self.integer else ''}"


def settings_hash(settings: dict) -> str:
    """A short name for a set of settings: the folder of the trial that ran them."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
