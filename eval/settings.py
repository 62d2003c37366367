"""The settings a method declares, and `--settings FILE`, which sets them before anything is written.

A method declares each setting it takes as a `Setting`: its type and the values it may take, and, when
`eval.tune` may search it, its search range (a `Param` centred on the official value). A search range is not a
validity range: a learning rate is searched over official/100 … ×100 but any rate > 0 is valid. Every value,
from a backbone's cascade.json or from a settings file, is checked against its declaration when the method's
configuration is built, once, and refused in one line naming where it came from, the method, the setting and
what it may be.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from eval.errors import UserError
from eval.search_space import Param

NAMES = {bool: ("a boolean", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
         str: ("a string", "strings"), list: ("a list", "lists"), dict: ("a mapping", "mappings")}


@dataclass(frozen=True)
class Setting:
    """One declared setting: `type`, bounds `low`/`high` (inclusive; `positive`: > 0), `choices`, `optional`
    (null allowed: no clipping, no extra inversion levels), `length` and `item` for lists, and `search`, the
    range eval.tune searches (None: not searched)."""
    type: type
    low: float | None = None
    high: float | None = None
    positive: bool = False
    choices: tuple = ()
    optional: bool = False
    length: int | None = None
    item: Setting | None = None
    search: Param | None = None

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if self.choices:
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, int if self.type is int else (int, float)):
                return False
            return (math.isfinite(value) and (self.low is None or value >= self.low)
                    and (self.high is None or value <= self.high) and (not self.positive or value > 0))
        if self.type is list:
            return (isinstance(value, (list, tuple)) and (self.length is None or len(value) == self.length)
                    and (self.item is None or all(self.item.accepts(v) for v in value)))
        return isinstance(value, self.type)

    def describe(self, plural: bool = False) -> str:
        if self.choices:
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.type is list:
            text = f"a list of {self.length or 'any number of'} {self.item.describe(True) if self.item else 'values'}"
        else:
            text = NAMES[self.type][plural]
            if self.positive:
                text += " > 0"
            if self.low is not None and self.high is not None:
                text += f" in [{self.low:g}, {self.high:g}]"
            elif self.low is not None:
                text += f" ≥ {self.low:g}"
            elif self.high is not None:
                text += f" ≤ {self.high:g}"
        return text + (" or null" if self.optional else "")


def check_settings(given: dict, declared: dict[str, Setting], where: str):
    """Refuse, in one line, a setting `declared` lacks or a value its declaration does not accept. `where` names
    the source and the method, e.g. "method vmc" or "backbone shapes (cascade.json), method vmc"."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise UserError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                        f"(its settings: {', '.join(declared)})")
    for name, value in given.items():
        if not declared[name].accepts(value):
            raise UserError(f"{where}, setting {name}: {json.dumps(value)} is not allowed "
                            f"(allowed: {declared[name].describe()})")


def read_settings(path: Path) -> dict[str, dict]:
    """{method label: settings} of an --settings file, or one line saying what is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such settings file") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a JSON settings file ({e})") from None
    methods = data.get("methods") if isinstance(data, dict) else None
    if not isinstance(methods, dict) or not all(isinstance(v, dict) for v in methods.values()):
        raise UserError(f"{path}: expected {{\"methods\": {{label: {{setting: value}}}}}}")
    return methods


def apply_settings(methods: list, path: Path | None) -> list[str]:
    """Configure every method with its entry of the settings file at `path` (none: with no settings, which
    builds and checks its configuration from its defaults and the backbone's), before anything is written. The
    problems, one line each: a label that is no method of the run, a setting a method lacks, a value out of
    its declared range."""
    chosen, problems = {} if path is None else read_settings(path), []
    labels = [m.label for m in methods]
    stray = [label for label in chosen if label not in labels]
    if stray:
        problems.append(f"{path}: {', '.join(map(repr, stray))} {'is' if len(stray) == 1 else 'are'} no method of "
                        f"this run (its methods: {', '.join(labels)})")
    for m in methods:
        try:
            m.configure({})  # the defaults and the backbone's, refused by their own source's name
            if chosen.get(m.label):
                try:
                    m.configure(chosen[m.label])
                except UserError as e:
                    raise UserError(f"{path}: {e}") from None
        except UserError as e:
            problems.append(str(e))
    return problems
