"""The results store: `results.jsonl` (one line per scored video, appended atomically) and `summary.csv`.

A line is written with a single write() on an O_APPEND descriptor and fsync'd, so a killed process leaves
at most one torn last line; readers ignore it and the next append cuts it off.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from eval.errors import UserError

SUMMARY_COLUMNS = ["method", "metric", "n", "n_undefined", "n_units", "mean", "ci95_low", "ci95_high", "std",
                   "spec_id"]
# What a confidence interval counts as one observation. The seeds of one target prompt are replicates, not new
# items (with an inverted start the keyframes, which carry the motion, do not even depend on the seed), so
# counting each video as independent makes intervals too narrow; more prompts narrow them, more seeds barely.
UNITS = {
    "prompt": "one target prompt of one case (its seeds averaged first)",
    "case": "one benchmark case, i.e. one reference (its prompts and seeds averaged first)",
    "video": "each video on its own (treats the seeds of a prompt as independent, which they are not)",
}


def read_results(path: Path) -> list[dict]:
    """The complete records of a results file, one per key (the first: a folder that two runs wrote at once,
    before runs took the folder's lock, may hold a key twice); a torn last line from a killed writer is
    skipped."""
    if not path.exists():
        return []
    records, seen = [], set()
    with open(path, "rb") as f:
        data = f.read()
    for i, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if data.endswith(b"\n") or i != data.count(b"\n"):
                raise UserError(f"{path}: line {i + 1} is not valid JSON (only a torn last line is tolerated)") \
                    from None
            continue
        key = record.get("key") if isinstance(record, dict) else None
        if key is None or key not in seen:
            seen.add(key)
            records.append(record)
    return records


class ResultsWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()

    def _repair_tail(self):
        """Cut a torn last line (no newline) left by a killed writer."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict):
        self.append_many([record])

    def append_many(self, records: list[dict]):
        """Append complete lines with one write() and one fsync."""
        data = _lines(records).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _lines(records: list[dict]) -> str:
    """The results.jsonl text of `records`: one sorted-key JSON object a line."""
    return "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records)


def write_results(path: Path, records: list[dict]):
    """Replace a results file with `records`, atomically."""
    atomic_write_text(path, _lines(records))


def atomic_write_text(path: Path, text: str):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def mean_ci95(values) -> tuple[float, float, float, float]:
    """(mean, low, high, std) with the Student-t 95% interval for the mean; low/high are NaN below n = 2."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, sd


def unit_of(record: dict, unit: str = "prompt") -> tuple:
    """The unit (see UNITS) a record belongs to. Records of `eval.score` have no case or seed: there the
    reference clip stands for the case, or the prompt when there is none."""
    case = record.get("case") or record.get("reference") or record["prompt"]
    return {"case": (case,), "prompt": (case, record["prompt"]),
            "video": (case, record["prompt"], record.get("seed"))}[unit]


def unit_ci95(values_by_unit: dict, bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """(mean, low, high) over the units' means: the interval counts units, not videos. `bounds`: the range
    the field's values lie in, to which the interval is clipped (a Student-t interval of a mean near a bound
    runs past it, e.g. below 0 on the 0..2.5 CLIPScore scale, where no mean can be)."""
    mean, lo, hi, _ = mean_ci95([float(np.mean(v)) for v in values_by_unit.values()])
    if bounds is not None and not math.isnan(lo):
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return mean, lo, hi


def summarize(records: list[dict], methods_order: list[str] | None = None) -> pd.DataFrame:
    """Long table: per method and metric, n videos, n units (target prompts), the mean of the units' means with
    its 95% CI and the std over videos; a metric measured under two different specs in one method is
    split into one row per spec (never averaged together)."""
    rows = {}
    for r in records:
        facts = {f"protocol.{k}": v for k, v in r.get("protocol", {}).items() if isinstance(v, (int, float))}
        if r.get("timing", {}).get("generate_s") is not None:
            facts["protocol.generate_s"] = r["timing"]["generate_s"]
        for metric, value in {**r.get("metrics", {}), **facts}.items():
            key = (r["method"], metric, r.get("spec_ids", {}).get(metric, ""))
            entry = rows.setdefault(key, {"units": {}, "undefined": 0})
            if value is None:
                entry["undefined"] += 1
            else:
                entry["units"].setdefault(unit_of(r), []).append(value)
    from eval.metrics import all_fields

    fields = all_fields()
    out = []
    for (method, metric, sid), entry in rows.items():
        values = [v for vs in entry["units"].values() for v in vs]
        bounds = fields[metric].range if metric in fields else None
        mean, lo, hi = unit_ci95(entry["units"], bounds) if values else (math.nan,) * 3
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        out.append({"method": method, "metric": metric, "n": len(values), "n_undefined": entry["undefined"],
                    "n_units": len(entry["units"]), "mean": mean, "ci95_low": lo, "ci95_high": hi, "std": sd,
                    "spec_id": sid})
    df = pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    ranks = {"method": {m: i for i, m in enumerate(methods_order or dict.fromkeys(df["method"]))},
             "metric": {m: i for i, m in enumerate(fields)}}
    if len(df):
        df = df.sort_values(["method", "metric"], key=lambda s: s.map(ranks[s.name]).fillna(len(ranks[s.name])),
                            kind="stable").reset_index(drop=True)
    return df


def write_summary(df: pd.DataFrame, path: Path):
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def format_table(df: pd.DataFrame, metrics: list[str] | None = None) -> str:
    """The paper-style table: a row per method, `mean ± half-CI` per metric, each metric marked ↑ or ↓ by
    which way is better, as it declares."""
    if df.empty:
        return "(no results)"
    metrics = metrics or [m for m in dict.fromkeys(df["metric"]) if not m.startswith("protocol.")]
    methods = list(dict.fromkeys(df["method"]))
    from eval.metrics import field_info

    arrows = {m: {"higher": " ↑", "lower": " ↓"}[field_info(m).direction] if field_info(m) else "" for m in metrics}
    cells = [["method"] + [m + arrows[m] for m in metrics]]
    for m in methods:
        row = [m]
        for metric in metrics:
            sel = df[(df.method == m) & (df.metric == metric)]
            if sel.empty:
                row.append("—")
                continue
            parts = []
            for _, s in sel.iterrows():
                if s.n == 0:
                    parts.append(f"undefined ×{s.n_undefined}")
                elif math.isnan(s.ci95_high):
                    parts.append(f"{s['mean']:.4f} (one unit)")
                elif abs((s.ci95_high - s["mean"]) - (s["mean"] - s.ci95_low)) > 1e-9:  # clipped at a bound
                    parts.append(f"{s['mean']:.4f} [{s.ci95_low:.4f}, {s.ci95_high:.4f}]")
                else:
                    parts.append(f"{s['mean']:.4f} ± {(s.ci95_high - s.ci95_low) / 2:.4f}")
            row.append(" | ".join(parts))
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
