"""What the makers of videos made elsewhere declare about them: a `precomputed:DIR` folder's `facts.yaml`.

Reading a file is no generation, so this suite measures nothing of such a method's cost; what its authors state
is recorded with each result as `declared_*` facts (the fair-protocol report and summary.csv show them under
those names, never as measured ones):

```yaml
hardware: 1x NVIDIA A100 80GB     # free text
trained_parameters: 22700000      # parameters trained per case
adapt_s: 310                      # adaptation seconds per case
generate_s: 41.5                  # generation seconds per video
cases:                            # per case, over the values above
  right: {adapt_s: 280, generate_s: 38}
```

A video's own `<name>.json` beside it with `generate_s` (what eval.run writes beside its videos) declares that
video's generation time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from eval.errors import UserError

FILE = "facts.yaml"
NUMBERS = ("adapt_s", "generate_s")
FIELDS = {*NUMBERS, "trained_parameters", "hardware", "cases"}


@dataclass
class Declared:
    path: Path | None = None  # the facts file, None where the folder has none
    common: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)  # case id → {adapt_s, generate_s}

    def for_video(self, case_id: str, video: Path | None) -> dict:
        """The declared facts of one video (`declared_` + name), the video's own generation time first."""
        facts = {**self.common, **self.cases.get(case_id, {})}
        own = video.with_suffix(".json") if video is not None else None
        if own is not None and own.is_file():
            try:
                seconds = json.loads(own.read_text()).get("generate_s")
            except (ValueError, AttributeError):
                raise UserError(f"{own}: not a JSON object with the video's generate_s") from None
            if seconds is not None:
                facts["generate_s"] = _seconds(own, "generate_s", seconds)
        return {f"declared_{k}": v for k, v in facts.items()}

    def unknown_cases(self, case_ids) -> list[str]:
        """One line per case the facts file names that the benchmark lacks."""
        return [f"{self.path}: field 'cases' names case {c!r}, which the benchmark does not have"
                for c in self.cases if c not in set(case_ids)]


def _seconds(path, where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"{path}: field '{where}' must be a number of seconds ≥ 0, got {value!r}")
    return float(value)


def read_declared(folder: Path) -> Declared:
    """The facts file of a precomputed folder (an empty Declared where there is none), checked: one line naming
    the file and the field for anything it cannot be."""
    path = folder / FILE
    if not path.is_file():
        return Declared()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid UTF-8 YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: must be a mapping of {', '.join(sorted(FIELDS))}")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise UserError(f"{path}: unknown field(s) {', '.join(unknown)} (fields: {', '.join(sorted(FIELDS))})")
    common = {k: _seconds(path, k, raw[k]) for k in NUMBERS if k in raw}
    params = raw.get("trained_parameters")
    if params is not None:
        if isinstance(params, bool) or not isinstance(params, int) or params < 0:
            raise UserError(f"{path}: field 'trained_parameters' must be a whole number ≥ 0, got {params!r}")
        common["trained_parameters"] = params
    if raw.get("hardware") is not None:
        if not isinstance(raw["hardware"], str) or not raw["hardware"].strip():
            raise UserError(f"{path}: field 'hardware' must be text, e.g. '1x NVIDIA A100 80GB'")
        common["hardware"] = raw["hardware"].strip()
    cases = raw.get("cases") or {}
    if not isinstance(cases, dict):
        raise UserError(f"{path}: field 'cases' must map case ids to {{adapt_s, generate_s}}")
    per_case = {}
    for cid, values in cases.items():
        if not isinstance(values, dict) or set(values) - set(NUMBERS):
            raise UserError(f"{path}: cases.{cid} may only set {', '.join(NUMBERS)}")
        per_case[str(cid)] = {k: _seconds(path, f"cases.{cid}.{k}", v) for k, v in values.items()}
    return Declared(path, common, per_case)
