"""python -m eval.table RUN_DIR [--methods A,B] [--metrics F,…] [--versus A] [--by-case] --format latex|md|csv

The paper's table of a run: a row per method, a column per metric under its paper label with ↑ or ↓ (as the
metric declares), the mean with its 95% interval over target prompts (the numbers of summary.csv), the best
value of each column in bold. With `--versus A`, each metric also gets A's paired difference from the row's
method and its Holm-corrected p: the numbers of `python -m eval.compare RUN --methods A,…` (the same code).
The dashboard's table downloads are made here too.

One precision rule: every number of a column (means, interval bounds, differences) is rounded to the decimal
place that gives its largest mean `--digits` significant digits (default 3), so a column's numbers line up and
the bold one is the best as printed (equal ones are all bold).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from eval.errors import UserError, cli_main
from eval.spreadsheet import safe_row

INTERVALS = {"pm": "mean ± half the 95% CI", "brackets": "mean [low, high] of the 95% CI", "none": "mean only"}
FORMATS = ("latex", "md", "csv")
ARROWS = {"higher": "↑", "lower": "↓"}


@dataclass
class Cell:
    text: str
    bold: bool = False


@dataclass
class Table:
    """Rendered by `render`: a header, rows of cells and notes (printed under the table, comments in LaTeX)."""

    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    rules: list[int] = field(default_factory=list)  # row indices a horizontal rule goes before (cases)


@dataclass(frozen=True)
class Column:
    metric: str
    spec: str | None  # set when the metric was measured under several specs: a column per spec

    def header(self) -> str:
        from eval.metrics import field_info

        declared = field_info(self.metric)
        name = (declared.label or self.metric) if declared else self.metric
        arrow = f" {ARROWS[declared.direction]}" if declared else ""
        return f"{name}{arrow}" + (f" [{self.spec}]" if self.spec else "")


def default_metrics(summary: pd.DataFrame) -> list[str]:
    """The headline fields the summary holds, in the order the metrics declare them (see Field.headline)."""
    from eval.metrics import all_fields

    present = set(summary["metric"])
    return [f for f, d in all_fields().items() if d.headline and f in present]


def decimals(values, digits: int) -> int:
    """The decimal place that gives the largest absolute value `digits` significant digits (0 to 6)."""
    finite = [abs(v) for v in values if v is not None and not math.isnan(v) and v != 0]
    if not finite:
        return max(0, digits - 1)
    return min(6, max(0, digits - 1 - math.floor(math.log10(max(finite)))))


def _interval(mean: float, lo: float, hi: float, d: int, style: str) -> tuple[str, bool]:
    """The cell text of a mean and its interval, and whether it lacks one (one unit)."""
    text = f"{mean:.{d}f}"
    if style == "none":
        return text, False
    if math.isnan(lo) or math.isnan(hi):
        return text, True
    symmetric = abs((hi - mean) - (mean - lo)) <= 1e-9 * max(1.0, abs(mean))
    if style == "pm" and symmetric:
        return f"{text} ± {(hi - lo) / 2:.{d}f}", False
    return f"{text} [{lo:.{d}f}, {hi:.{d}f}]", False


def _p_text(p: float) -> str:
    return "—" if p is None or math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def build(summary: pd.DataFrame, methods: list[str] | None = None, metrics: list[str] | None = None,
          interval: str = "pm", digits: int = 3, comparison: pd.DataFrame | None = None,
          versus: str | None = None) -> Table:
    """The table of a long summary (eval.results.summarize's columns: method, metric, n, mean, ci95_low,
    ci95_high, spec_id). `comparison`: eval.compare.compare(records, versus, others) for the Δ and p columns."""
    from eval.metrics import field_info

    if interval not in INTERVALS:
        raise UserError(f"--interval must be one of {', '.join(INTERVALS)}, got '{interval}'")
    present = list(dict.fromkeys(summary["method"]))
    methods = methods or present
    missing = [m for m in methods if m not in present]
    if missing:
        raise UserError(f"method(s) {', '.join(map(repr, missing))} not in this run (methods: {', '.join(present)})")
    summary = summary[summary["method"].isin(methods)]
    metrics = metrics or default_metrics(summary)
    spec_of = summary["spec_id"].fillna("").astype(str)
    columns: list[Column] = []
    notes = []
    for metric in metrics:
        specs = sorted(set(spec_of[summary["metric"] == metric]) - {""})
        if len(specs) > 1:
            notes.append(f"{metric} was measured under {len(specs)} specs ({', '.join(specs)}): a column each, "
                         "never compared")
        columns += [Column(metric, s) for s in specs] if len(specs) > 1 else [Column(metric, None)]
    header = ["Method"]
    for i, col in enumerate(columns):
        header.append(col.header())
        if comparison is not None and (i + 1 == len(columns) or columns[i + 1].metric != col.metric):
            header += ["Δ", "p"]
    rows = [[Cell(m)] for m in methods]
    one_unit = False
    for i, col in enumerate(columns):
        sel = summary[(summary["metric"] == col.metric) & ((spec_of == col.spec) if col.spec else True)]
        by_method = {r.method: r for r in sel.itertuples()}
        d = decimals(sel["mean"], digits)
        shown = {}
        for row, m in zip(rows, methods):
            r = by_method.get(m)
            if r is None:
                row.append(Cell("—"))
            elif r.n == 0:
                row.append(Cell("n/a"))
            else:
                text, lacks = _interval(r.mean, r.ci95_low, r.ci95_high, d, interval)
                one_unit |= lacks
                row.append(Cell(text + ("†" if lacks else "")))
                shown[m] = round(r.mean, d)
        declared = field_info(col.metric)
        if declared and len(shown) > 1:
            best = (max if declared.higher_is_better else min)(shown.values())
            for row, m in zip(rows, methods):
                if shown.get(m) == best:
                    row[-1].bold = True
        if comparison is not None and (i + 1 == len(columns) or columns[i + 1].metric != col.metric):
            diffs = comparison[comparison["metric"] == col.metric].set_index("b")
            for row, m in zip(rows, methods):
                if m == versus or m not in diffs.index or math.isnan(diffs.loc[m, "mean_diff"]):
                    row += [Cell("—"), Cell("—")]
                    continue
                c = diffs.loc[m]
                text, _ = _interval(c["mean_diff"], c["ci95_low"], c["ci95_high"], d, interval)
                row += [Cell(("+" if c["mean_diff"] > 0 else "") + text), Cell(_p_text(c["p_holm"]))]
    notes.insert(0, "↑ higher is better, ↓ lower; bold: the best of each column as printed; "
                    f"{INTERVALS[interval]} over target prompts")
    if one_unit:
        notes.append("†: one target prompt, no interval")
    if comparison is not None:
        others = [m for m in methods if m != versus]
        notes.append(f"Δ: {versus} minus the row's method over the videos both made, 95% CI over target prompts; "
                     f"p: paired t-test, Holm-corrected per metric over the {len(others)} comparison(s) "
                     f"(python -m eval.compare RUN --methods {','.join([versus, *others])})")
    return Table(header, rows, notes)


def run_table(records, methods: list[str] | None = None, metrics: list[str] | None = None, interval: str = "pm",
              digits: int = 3, versus: str | None = None, by_case: bool = False) -> Table:
    """The table of a run's records (summarized as summary.csv is); with `by_case`, a block of rows per case."""
    from eval.compare import compare
    from eval.results import summarize

    present = list(dict.fromkeys(r.method for r in records))
    methods = methods or present
    if versus is not None:
        if versus not in methods:
            methods = [versus, *methods]
        if len(methods) < 2:
            raise UserError(f"--versus {versus}: the table needs at least one other method")
    missing = [m for m in methods if m not in present]
    if missing:
        raise UserError(f"method(s) {', '.join(map(repr, missing))} not in this run (methods: {', '.join(present)})")
    records = [r for r in records if r.method in methods]
    whole = summarize(records, methods)
    metrics = metrics or default_metrics(whole)
    unknown = [m for m in metrics if m not in set(whole["metric"])]
    if unknown:
        fields = ", ".join(dict.fromkeys(whole["metric"]))
        raise UserError(f"--metrics: {', '.join(map(repr, unknown))} not in this run (fields: {fields})")
    others = [m for m in methods if m != versus]
    comparison = compare(records, versus, others, metrics, by_case=by_case) if versus else None
    if not by_case:
        return build(whole, methods, metrics, interval, digits, comparison, versus)
    groups: dict[str, list] = {}
    for r in records:
        groups.setdefault(r.unit_case, []).append(r)
    out = None
    for case, group in groups.items():
        shown = [m for m in methods if any(r.method == m for r in group)]
        part = build(summarize(group, shown), shown, metrics, interval, digits,
                     None if comparison is None else comparison[comparison["case"] == case], versus)
        if out is None:
            out = Table(["Case", *part.header], [], part.notes)
        else:
            out.notes += [n for n in part.notes if n not in out.notes]
        out.rules.append(len(out.rows))
        out.rows += [[Cell(case if k == 0 else ""), *row] for k, row in enumerate(part.rows)]
    if comparison is not None:
        tests = len(comparison) // len(metrics)
        out.notes = [n.replace(f"per metric over the {len(others)} comparison(s)",
                               f"per metric over its {tests} tests (every case and comparison)") for n in out.notes]
    return out


def tex_escape(text: str) -> str:
    """LaTeX-safe text for table cells."""
    return "".join("\\" + ch if ch in "&%$#_{}" else ch for ch in str(text))


def _latex_cell(cell: Cell) -> str:
    text = tex_escape(cell.text)
    for plain, tex in (("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("—", "--"),
                       ("< ", "$<$ "), ("†", r"$^\dagger$"), ("Δ", r"$\Delta$"), ("×", r"$\times$")):
        text = text.replace(plain, tex)
    return rf"\textbf{{{text}}}" if cell.bold else text


def render(table: Table, fmt: str) -> str:
    """The table as LaTeX (booktabs), Markdown or CSV (the cells' text, no bold, no notes)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(safe_row(table.header))  # formula-looking text neutralised, as in every CSV written
        w.writerows(safe_row([c.text for c in row]) for row in table.rows)
        return buf.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(table.header) + " |",
                 "|" + "|".join([":---"] * (2 if table.header[0] == "Case" else 1) +
                                ["---:"] * (len(table.header) - (2 if table.header[0] == "Case" else 1))) + "|"]
        lines += ["| " + " | ".join(f"**{c.text}**" if c.bold else c.text for c in row) + " |" for row in table.rows]
        return "\n".join(lines + [""] + [f"{n}." if not n.endswith(".") else n for n in table.notes]) + "\n"
    if fmt == "latex":
        left = 2 if table.header[0] == "Case" else 1
        lines = [r"% \usepackage{booktabs}", r"\begin{tabular}{" + "l" * left + "c" * (len(table.header) - left) + "}",
                 r"\toprule", " & ".join(_latex_cell(Cell(h)) for h in table.header) + r" \\", r"\midrule"]
        for i, row in enumerate(table.rows):
            if i in table.rules and i > 0:
                lines.append(r"\midrule")
            lines.append(" & ".join(_latex_cell(c) for c in row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {n}" for n in table.notes]
        return "\n".join(lines) + "\n"
    raise UserError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")


def names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when not given)."""
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def scored_records(run: Path) -> tuple:
    """(RunFolder, its records) of a run directory, or one line saying why it has none (eval.table, eval.plot)."""
    from eval.rundir import RunFolder

    folder = RunFolder(run)
    if not folder.results.is_file():
        raise UserError(f"{folder.results}: no such file (give a run directory written by eval.run or eval.score)")
    records = folder.records()
    if not records:
        raise UserError(f"{folder.results}: no scored videos yet")
    return folder, records


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.table", description=__doc__.split("\n\n")[1],
                                epilog=__doc__.split("\n\n")[2])
    p.add_argument("run", type=Path, help="a run directory (written by eval.run or eval.score)")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--methods", default=None, help="A,B,...: the rows, in this order (default: every method)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated fields, in this order (default: the headline fields the run has; "
                        "fair-protocol facts such as protocol.generate_s may be named too)")
    p.add_argument("--versus", default=None, metavar="METHOD",
                   help="add METHOD's paired difference from each row's method and its Holm-corrected p")
    p.add_argument("--by-case", action="store_true", help="a block of rows per case")
    p.add_argument("--interval", choices=list(INTERVALS), default="pm",
                   help="; ".join(f"{k}: {v}" for k, v in INTERVALS.items()) + " (default: pm)")
    p.add_argument("--digits", type=int, default=3, help="significant digits of each column's largest mean "
                   "(default: 3)")
    p.add_argument("--out", type=Path, default=None, help="write the table to this file (default: print it)")
    args = p.parse_args(argv)
    if not 1 <= args.digits <= 6:
        raise UserError(f"--digits must be between 1 and 6, got {args.digits}")
    from eval.results import atomic_write_text

    _, records = scored_records(args.run)
    table = run_table(records, names(args.methods), names(args.metrics), args.interval, args.digits,
                      args.versus, args.by_case)
    text = render(table, args.format)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"written to {args.out}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
