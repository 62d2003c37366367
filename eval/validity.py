"""python -m eval.validity RUN_DIR

How far the model-based metrics can be trusted, measured where ground truth exists (a shapes-world run, scored
with the oracle): the Spearman rank correlation over all videos of the run between each field and the oracle
field its metric names as its check (every CLIP field and `oracle_appearance`, every flow and track field and
`oracle_motion`; a lower-is-better field agrees with the oracle when its correlation is negative), with a 95%
bootstrap interval that resamples target prompts (each with all its videos: its seeds and methods are not
independent of one another), and the numbers of videos and prompts. Writes RUN_DIR/validity.csv and prints the table;
with --per-method also the same within each method's videos alone (RUN_DIR/validity_per_method.csv).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from eval.errors import UserError, cli_main
from eval.metrics import all_fields, field_info
from eval.record import Record
from eval.results import atomic_write_text
from eval.rundir import RunFolder
from eval.spreadsheet import frame_to_csv


def pairs(records: list[Record]) -> list[tuple[str, str]]:
    """(field, the ground-truth field that checks it) for every field of the records whose metric declares one
    (`Field.checked_by`), in the order the metrics declare them."""
    present = {k for r in records for k in r.metrics}
    return [(name, f.checked_by) for name, f in all_fields().items() if f.checked_by and name in present]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def validity(records: list[Record], resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(seed)
    for metric, oracle in pairs(records):
        kept = [r for r in records if r.metrics.get(metric) is not None and r.metrics.get(oracle) is not None]
        values = np.array([(r.metrics[metric], r.metrics[oracle]) for r in kept], dtype=float).reshape(-1, 2)
        by_unit = {}
        for i, r in enumerate(kept):
            by_unit.setdefault(r.unit(), []).append(i)
        units = [np.array(u) for u in by_unit.values()]
        rho = spearman(values[:, 0], values[:, 1])
        boot = [spearman(*values[np.concatenate([units[j] for j in rng.integers(0, len(units), len(units))])].T)
                for _ in range(resamples)] if len(values) >= 3 else []
        boot = [b for b in boot if not np.isnan(b)]
        lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan))
        rows.append({"metric": metric, "oracle": oracle, "spearman": rho, "ci_low": lo, "ci_high": hi,
                     "n": len(values), "n_units": len(units), "direction": field_info(metric).direction})
    return pd.DataFrame(rows)


READING_NOTE = """How to read it: rho > 0 means the field ranks the videos as the oracle does (for a lower-is-better field,
agreement is rho < 0); an interval that holds 0 is no evidence either way. A field that disagrees (rho < 0 for a
higher-is-better field) prefers the videos the oracle rates worse. Pooled over methods, that can come from the
methods themselves: one method may score high on the field for another reason than what the oracle checks (a
video that copies the reference's look keeps CLIP's consistency high while missing the prompt's colour). Within
one method (--per-method) that reason is gone: a field that agrees within each method but not pooled is
confounded by the method, and one that still disagrees within methods measures something else than its oracle."""


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.validity", description=__doc__.split("\n\n")[1])
    p.add_argument("run", type=Path)
    p.add_argument("--methods", default=None,
                   help="comma-separated methods whose videos count (default: all but `reference`, which shows the "
                        "reference's own object, so its flow and track metrics are perfect while its oracle_motion, "
                        "which follows the target prompt's object, is 0 by construction)")
    p.add_argument("--per-method", action="store_true",
                   help="also each method's videos alone (RUN_DIR/validity_per_method.csv): the agreement within "
                        "a method, without the differences between methods")
    args = p.parse_args(argv)
    folder = RunFolder(args.run)
    if not folder.results.is_file():
        raise UserError(f"{folder.results}: no such file (give a run directory written by eval.run or eval.score)")
    records = folder.records()
    if not any(r.metrics.get("oracle_appearance") is not None for r in records):
        raise UserError(f"{folder.results}: no oracle scores in this run (oracle metrics exist for shapes-world runs: "
                        "eval.run --benchmark shapes, or eval.score --oracle shapes)")
    present = list(dict.fromkeys(r.method for r in records))
    wanted = [m.strip() for m in args.methods.split(",")] if args.methods else [m for m in present if m != "reference"]
    unknown = [m for m in wanted if m not in present]
    if unknown:
        raise UserError(f"--methods: {', '.join(unknown)} not in this run (methods: {', '.join(present)})")
    records = [r for r in records if r.method in wanted]
    table = validity(records)
    atomic_write_text(args.run / "validity.csv", frame_to_csv(table, index=False, float_format="%.4f"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nover the videos of {', '.join(wanted)}; written to {args.run / 'validity.csv'}")
    if args.per_method:
        per = pd.concat([validity([r for r in records if r.method == m]).assign(method=m) for m in wanted],
                        ignore_index=True)
        per = per[["method", *[c for c in per.columns if c != "method"]]]
        out = args.run / "validity_per_method.csv"
        atomic_write_text(out, frame_to_csv(per, index=False, float_format="%.4f"))
        print("\nwithin each method:\n" + per.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"\nwritten to {out}")
    print("\n" + READING_NOTE)


if __name__ == "__main__":
    main()
