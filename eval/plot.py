"""python -m eval.plot RUN_DIR --out FIGURE.png|pdf [--kind bars|cases|strip] [--methods A,B] [--metrics F,…]

A run's figures for a paper, with no dashboard: `bars`, per metric the methods' means with their 95% intervals
over target prompts (summary.csv's numbers); `cases`, the same per case; `strip`, a few frames of one case,
target prompt and seed, the reference clip's first and then each method's, as written on disk.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np

from eval.errors import UserError, cli_main

KINDS = ("bars", "cases", "strip")
FORMATS = (".png", ".pdf")


def _save(fig, out: Path):
    """Write the figure atomically, in the format its suffix names."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}{out.suffix}")
    try:
        fig.savefig(tmp, format=out.suffix[1:], dpi=200, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _grid(n: int):
    import matplotlib.pyplot as plt

    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _errors(sel) -> np.ndarray:
    """Asymmetric error-bar lengths of the rows' intervals (0 where a row has none: one unit)."""
    lo = (sel["mean"] - sel["ci95_low"]).fillna(0).to_numpy()
    hi = (sel["ci95_high"] - sel["mean"]).fillna(0).to_numpy()
    return np.vstack([lo, hi])


def bars(records, methods: list[str], metrics: list[str], by_case: bool = False):
    """Per metric, a bar per method (grouped by case with `by_case`) with its 95% interval."""
    import matplotlib.pyplot as plt

    from eval.results import summarize
    from eval.table import Column

    groups: dict[str, list] = {"all": records}
    if by_case:
        groups = {}
        for r in records:
            groups.setdefault(r.unit_case, []).append(r)
    summaries = {g: summarize(rs, methods) for g, rs in groups.items()}
    colours = plt.get_cmap("tab10")
    fig, axes = _grid(len(metrics))
    width = 0.8 / len(methods)
    for ax, metric in zip(axes, metrics):
        for k, method in enumerate(methods):
            x, means, errs = [], [], []
            for g_i, s in enumerate(summaries.values()):
                sel = s[(s["method"] == method) & (s["metric"] == metric) & (s["n"] > 0)]
                if len(sel) > 1:
                    raise UserError(f"{metric} of {method} was measured under several specs: plot one run's "
                                    "numbers under one spec (python -m eval.rescore)")
                if len(sel):
                    x.append(g_i + (k - (len(methods) - 1) / 2) * width if by_case else k)
                    means.append(float(sel["mean"].iloc[0]))
                    errs.append(_errors(sel)[:, 0])
            if x:
                ax.bar(x, means, width if by_case else 0.7, yerr=np.array(errs).T, capsize=3,
                       color=colours(k % 10), label=method)
        ax.set_title(Column(metric, None).header(), fontsize=10)
        if by_case:
            ax.set_xticks(range(len(summaries)), list(summaries), rotation=30, ha="right", fontsize=8)
        else:
            ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    if by_case:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=min(len(methods), 6),
                   bbox_to_anchor=(0.5, 1.04), frameon=False)
    fig.text(0.5, -0.02, "mean and 95% CI over target prompts", ha="center", fontsize=8)
    fig.tight_layout()
    return fig


def strip(folder, records, methods: list[str], case: str | None, prompt: str | None, seed: int | None,
          frames: int):
    """The reference clip and each method's video of one (case, prompt, seed), `frames` evenly spaced frames."""
    import matplotlib.pyplot as plt

    from eval.video import read_video, sample_indices

    chosen = [r for r in records if (case is None or r.unit_case == case) and (prompt is None or r.prompt == prompt)
              and (seed is None or r.seed == seed)]
    if not chosen:
        raise UserError(f"no video of case {case!r}, prompt {prompt!r}, seed {seed!r} in {folder.path} "
                        f"(cases: {', '.join(dict.fromkeys(r.unit_case for r in records))})")
    first = chosen[0]
    chosen = [r for r in chosen if (r.unit_case, r.prompt, r.seed) == (first.unit_case, first.prompt, first.seed)]
    by_method = {r.method: r for r in chosen}
    rows = []
    try:
        rows.append(("reference", read_video(folder.reference(first)).frames))
    except (UserError, OSError) as e:
        print(f"note: the reference clip is not shown ({e})")
    for m in methods:
        if m in by_method:
            rows.append((m, read_video(folder.video(by_method[m])).frames))
    fig, axes = plt.subplots(len(rows), frames, figsize=(1.6 * frames, 1.6 * len(rows) * _aspect(rows)),
                             squeeze=False)
    for (name, video), row in zip(rows, axes):
        for ax, i in zip(row, sample_indices(len(video), frames)):
            ax.imshow(video[i])
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=9)
    for ax, i in zip(axes[0], sample_indices(len(rows[0][1]), frames)):
        ax.set_title(f"frame {i}", fontsize=7)
    fig.suptitle(f"{first.unit_case}: “{first.prompt}”" + (f", seed {first.seed}" if first.seed is not None else ""),
                 fontsize=10)
    fig.tight_layout()
    return fig


def _aspect(rows) -> float:
    h, w = rows[0][1].shape[1:3]
    return h / w


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.plot", description=__doc__.split("\n\n")[1])
    p.add_argument("run", type=Path, help="a run directory (written by eval.run or eval.score)")
    p.add_argument("--out", type=Path, required=True, help="FIGURE.png or FIGURE.pdf")
    p.add_argument("--kind", choices=KINDS, default="bars", help="bars (default), cases or strip")
    p.add_argument("--methods", default=None, help="A,B,...: the methods, in this order (default: every method)")
    p.add_argument("--metrics", default=None, help="comma-separated fields (default: the headline fields the run "
                                                   "has)")
    p.add_argument("--case", default=None, help="strip: the case (default: the first)")
    p.add_argument("--prompt", default=None, help="strip: the target prompt (default: the case's first)")
    p.add_argument("--seed", type=int, default=None, help="strip: the seed (default: the first)")
    p.add_argument("--frames", type=int, default=6, help="strip: frames per video (default: 6)")
    args = p.parse_args(argv)
    if args.out.suffix.lower() not in FORMATS:
        raise UserError(f"--out {args.out}: give a .png or .pdf file")
    if args.frames < 1:
        raise UserError(f"--frames must be positive, got {args.frames}")
    import matplotlib

    matplotlib.use("Agg")
    from eval.results import summarize
    from eval.table import default_metrics, names, scored_records

    folder, records = scored_records(args.run)
    present = list(dict.fromkeys(r.method for r in records))
    methods = names(args.methods) or present
    missing = [m for m in methods if m not in present]
    if missing:
        raise UserError(f"method(s) {', '.join(map(repr, missing))} not in this run (methods: {', '.join(present)})")
    records = [r for r in records if r.method in methods]
    if args.kind == "strip":
        fig = strip(folder, records, methods, args.case, args.prompt, args.seed, args.frames)
    else:
        whole = summarize(records, methods)
        metrics = names(args.metrics) or default_metrics(whole)
        unknown = [m for m in metrics if m not in set(whole["metric"])]
        if unknown:
            raise UserError(f"--metrics: {', '.join(map(repr, unknown))} not in this run "
                            f"(fields: {', '.join(dict.fromkeys(whole['metric']))})")
        fig = bars(records, methods, metrics, by_case=args.kind == "cases")
    _save(fig, args.out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
