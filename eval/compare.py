"""python -m eval.compare RUN_DIR --methods vmc,t2v[,tav,...] [--metrics oracle_motion,text_alignment] [--unit prompt]

Paired comparison of methods of one run: for every metric, the mean difference A − B over the videos both
methods made (same case, prompt and seed), with the Student-t 95% confidence interval over units (by default
target prompts: the differences of a prompt's seeds are averaged first, since seeds are replicates, not new
items), n videos, n units and the paired t-test's p. Pairing removes the between-item variance that unpaired
CIs in summary.csv carry, so this is the test to quote for "A beats B". With more than two methods the first
is compared with each of the others, and `p_holm` corrects each metric's p values for those several
comparisons (Holm); `significant` is p_holm < 0.05, which for two methods is the interval excluding zero.
`direction` says whether higher or lower is better for the metric (as it declares) and `better` names the
method whose mean is the better one (significant or not).
`--by-case` gives a row per case instead, corrected over all cases and comparisons. Writes
RUN_DIR/compare_<A>_vs_<B>[+<C>...][_by_case].csv and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from eval.errors import UserError, cli_main
from eval.metrics import all_fields, field_info
from eval.record import Record
from eval.results import UNITS, atomic_write_text, unit_ci95
from eval.rundir import RunFolder
from eval.spreadsheet import frame_to_csv

ALPHA = 0.05


def paired(records: list[Record], a: str, b: str, metrics: list[str] | None = None,
           unit: str = "prompt") -> pd.DataFrame:
    """One row per metric: A − B over the videos both made, its interval over units and the t-test's p."""
    by = {}
    for r in records:
        by.setdefault(r.method, {})[r.unit("video")] = r
    for m in (a, b):
        if m not in by:
            raise UserError(f"method '{m}' is not in this run (methods: {', '.join(sorted(by))})")
    common = sorted(set(by[a]) & set(by[b]), key=repr)
    names = metrics or ordered_fields(records)
    rows = []
    for metric in names:
        diffs = {}
        for k in common:
            ra, rb = by[a][k], by[b][k]
            va, vb = ra.metrics.get(metric), rb.metrics.get(metric)
            if va is not None and vb is not None and ra.spec_ids.get(metric) == rb.spec_ids.get(metric):
                diffs.setdefault(ra.unit(unit), []).append(va - vb)
        mean, lo, hi = unit_ci95(diffs) if diffs else (float("nan"),) * 3
        declared = field_info(metric)
        better = "" if declared is None or not mean or np.isnan(mean) else \
            (a if (mean > 0) == declared.higher_is_better else b)
        rows.append({"metric": metric, "direction": declared.direction if declared else "", "better": better,
                     "a": a, "b": b, "unit": unit, "n": sum(map(len, diffs.values())),
                     "n_units": len(diffs), "mean_diff": mean, "ci95_low": lo, "ci95_high": hi,
                     "p": t_test_p([float(np.mean(v)) for v in diffs.values()])})
    table = pd.DataFrame(rows)
    table["p_holm"] = table["p"]
    table["significant"] = table["p"] < ALPHA
    return table


def ordered_fields(records: list[Record]) -> list[str]:
    """The metric fields of the records, in the order the metrics declare them (undeclared ones last)."""
    order = {f: i for i, f in enumerate(all_fields())}
    return sorted({k for r in records for k in r.metrics}, key=lambda k: (order.get(k, len(order)), k))


def t_test_p(unit_means: list[float]) -> float:
    """Two-sided one-sample t-test of mean zero over the units (NaN below two units; a difference the same in
    every unit gives 0, or 1 when it is zero, as its degenerate interval does)."""
    x = np.asarray(unit_means, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    if x.std(ddof=1) == 0:
        return 0.0 if x.mean() != 0 else 1.0
    return float(stats.ttest_1samp(x, 0.0).pvalue)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p values; NaN stays NaN and does not count as a comparison."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def compare(records: list[Record], first: str, others: list[str], metrics: list[str] | None = None,
            unit: str = "prompt", by_case: bool = False) -> pd.DataFrame:
    """`first` against each of `others` (`paired`), with each metric's p values Holm-corrected over them; with
    `by_case`, one row per case as well (a `case` column), corrected over every case and comparison."""
    if not by_case:
        groups = {None: records}
    elif unit == "case":
        raise UserError("--by-case pairs within each case: use --unit prompt or video with it")
    else:
        present = {r.method for r in records}
        for m in (first, *others):
            if m not in present:
                raise UserError(f"method '{m}' is not in this run (methods: {', '.join(sorted(present))})")
        groups = {}
        for r in records:
            groups.setdefault(r.unit_case, []).append(r)
    names = metrics or ordered_fields(records)
    parts = []
    for case, group in groups.items():
        methods = {r.method for r in group}
        for b in others:
            if by_case and not {first, b} <= methods:
                continue  # the case has no videos of one of the two
            part = paired(group, first, b, names, unit)
            parts.append(part if case is None else part.assign(case=case))
    if not parts:
        raise UserError(f"no case has videos of both {first} and any of {', '.join(others)}")
    table = pd.concat(parts, ignore_index=True)
    if by_case:
        table = table[["case", *[c for c in table.columns if c != "case"]]]
    table["p_holm"] = table.groupby("metric", sort=False)["p"].transform(lambda p: holm(p.to_numpy()))
    table["significant"] = table["p_holm"] < ALPHA
    return table


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.compare", description=__doc__.split("\n\n")[1])
    p.add_argument("run", type=Path)
    p.add_argument("--methods", required=True,
                   help="A,B[,C...]: method labels; A is compared with each of the others (A − B, A − C, ...)")
    p.add_argument("--metrics", default=None, help="comma-separated (default: every metric in the run)")
    p.add_argument("--by-case", action="store_true",
                   help="one row per case and comparison (the interval and test within the case), Holm-corrected "
                        "over all of them, to see where A wins or loses")
    p.add_argument("--unit", choices=list(UNITS), default="prompt",
                   help="what the interval counts as one observation: " +
                        "; ".join(f"{k}: {v}" for k, v in UNITS.items()) + " (default: prompt)")
    args = p.parse_args(argv)
    labels = [m.strip() for m in args.methods.split(",") if m.strip()]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise UserError(f"--methods takes two or more different labels, got '{args.methods}'")
    folder = RunFolder(args.run)
    if not folder.results.is_file():
        raise UserError(f"{folder.results}: no such file (give a run directory written by eval.run)")
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    table = compare(folder.records(), labels[0], labels[1:], metrics, args.unit, args.by_case)
    out = args.run / f"compare_{labels[0]}_vs_{'+'.join(labels[1:])}{'_by_case' if args.by_case else ''}.csv"
    atomic_write_text(out, frame_to_csv(table, index=False, float_format="%.6g"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
