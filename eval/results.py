"""The summary of a run's records (`summary.csv`, the console table) and the intervals behind it and eval.compare.
(results.jsonl itself is eval.rundir.RunFolder's.)"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from eval.record import Record
from eval.spreadsheet import frame_to_csv

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


def atomic_write_text(path: Path, text: str):
    """Write a file so that a reader sees its old text or the new, never part of it."""
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


def unit_ci95(values_by_unit: dict, bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """(mean, low, high) over the units' means: the interval counts units, not videos. `bounds`: the range
    the field's values lie in, to which the interval is clipped (a Student-t interval of a mean near a bound
    runs past it, e.g. below 0 on the 0..2.5 CLIPScore scale, where no mean can be)."""
    mean, lo, hi, _ = mean_ci95([float(np.mean(v)) for v in values_by_unit.values()])
    if bounds is not None and not math.isnan(lo):
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return mean, lo, hi


def summarize(records: list[Record], methods_order: list[str] | None = None) -> pd.DataFrame:
    """Long table: per method and metric, n videos, n units (target prompts), the mean of the units' means with
    its 95% CI and the std over videos; a metric measured under two different specs in one method is
    split into one row per spec (never averaged together)."""
    rows = {}
    for r in records:
        for metric, value in {**r.metrics, **r.protocol_facts}.items():
            key = (r.method, metric, r.spec_ids.get(metric, ""))
            entry = rows.setdefault(key, {"units": {}, "undefined": 0})
            if value is None:
                entry["undefined"] += 1
            else:
                entry["units"].setdefault(r.unit(), []).append(value)
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
    atomic_write_text(path, frame_to_csv(df, index=False, float_format="%.6g"))


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
