"""python -m eval.compare RUN_DIR --methods vmc,t2v [--metrics oracle_motion,text_alignment] [--unit prompt]

Paired comparison of two methods of one run: for every metric, the mean difference A − B over the videos both
methods made (same case, prompt and seed), with the Student-t 95% confidence interval over units (by default
target prompts: the differences of a prompt's seeds are averaged first, since seeds are replicates, not new
items), n videos, n units, and whether the interval excludes zero. Pairing removes the between-item variance
that unpaired CIs in summary.csv carry, so this is the test to quote for "A beats B". Writes
RUN_DIR/compare_<A>_vs_<B>.csv and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from eval.errors import UserError, cli_main
from eval.results import UNITS, atomic_write_text, read_results, unit_ci95, unit_of


def paired(records: list[dict], a: str, b: str, metrics: list[str] | None = None,
           unit: str = "prompt") -> pd.DataFrame:
    by = {}
    for r in records:
        by.setdefault(r["method"], {})[unit_of(r, "video")] = r
    for m in (a, b):
        if m not in by:
            raise UserError(f"method '{m}' is not in this run (methods: {', '.join(sorted(by))})")
    common = sorted(set(by[a]) & set(by[b]), key=repr)
    names = metrics or sorted({k for r in records for k in r["metrics"]})
    rows = []
    for metric in names:
        diffs = {}
        for k in common:
            ra, rb = by[a][k], by[b][k]
            va, vb = ra["metrics"].get(metric), rb["metrics"].get(metric)
            if va is not None and vb is not None and \
                    ra.get("spec_ids", {}).get(metric) == rb.get("spec_ids", {}).get(metric):
                diffs.setdefault(unit_of(ra, unit), []).append(va - vb)
        mean, lo, hi = unit_ci95(diffs) if diffs else (float("nan"),) * 3
        rows.append({"metric": metric, "a": a, "b": b, "unit": unit, "n": sum(map(len, diffs.values())),
                     "n_units": len(diffs), "mean_diff": mean, "ci95_low": lo, "ci95_high": hi,
                     "significant": bool(diffs) and (lo > 0 or hi < 0)})
    return pd.DataFrame(rows)


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.compare", description=__doc__.split("\n\n")[1])
    p.add_argument("run", type=Path)
    p.add_argument("--methods", required=True, help="A,B: the two method labels to compare (A − B)")
    p.add_argument("--metrics", default=None, help="comma-separated (default: every metric in the run)")
    p.add_argument("--unit", choices=list(UNITS), default="prompt",
                   help="what the interval counts as one observation: " +
                        "; ".join(f"{k}: {v}" for k, v in UNITS.items()) + " (default: prompt)")
    args = p.parse_args(argv)
    pair = [m.strip() for m in args.methods.split(",") if m.strip()]
    if len(pair) != 2:
        raise UserError(f"--methods takes exactly two labels, got '{args.methods}'")
    path = args.run / "results.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no such file (give a run directory written by eval.run)")
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    table = paired(read_results(path), *pair, metrics, args.unit)
    out = args.run / f"compare_{pair[0]}_vs_{pair[1]}.csv"
    atomic_write_text(out, table.to_csv(index=False, float_format="%.6g"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
