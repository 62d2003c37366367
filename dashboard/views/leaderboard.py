"""The paper-style table: a row per method (per run when comparing), mean and 95% CI per metric."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from eval import table as paper_table
from eval.metrics import field_info, spec_id

from dashboard.data import load_human, load_run_json, load_summary, metric_sort_key


def method_label(run, method: str, several: bool) -> str:
    return f"{run.name}/{method}" if several else method


def leaderboard_frames(runs) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(table of means with CI strings, long table it came from, warnings about incomparable specs)."""
    several = len(runs) > 1
    parts = []
    for run in runs:
        if not (run.path / "summary.csv").exists():
            continue
        s = run.keep(load_summary(run.path)).copy()
        s["label"] = [method_label(run, m, several) for m in s["method"]]
        s["run"] = run.name
        parts.append(s)
    if not parts:
        return pd.DataFrame(), pd.DataFrame(), []
    long = pd.concat(parts, ignore_index=True)
    long["spec_id"] = long["spec_id"].fillna("").astype(str)
    warnings = []
    long["column"] = long["metric"]
    for metric, g in long.groupby("metric"):
        specs = sorted(s for s in g["spec_id"].unique() if s)
        if len(specs) > 1:
            warnings.append(f"`{metric}` was measured under {len(specs)} different specs ({', '.join(specs)}): "
                            f"shown as separate columns, never side by side.")
            long.loc[g.index, "column"] = [f"{metric} [{s}]" for s in g["spec_id"]]
    columns = sorted(long["column"].unique(), key=metric_sort_key)
    labels = list(dict.fromkeys(long["label"]))
    table = pd.DataFrame(index=pd.Index(labels, name="method"))
    for col in columns:
        sel = long[long["column"] == col].set_index("label")
        table[col] = sel["mean"]
        table[f"{col} 95% CI"] = [f"[{sel.loc[l, 'ci95_low']:.4g}, {sel.loc[l, 'ci95_high']:.4g}]"
                                  if l in sel.index and pd.notna(sel.loc[l, "ci95_low"]) else ""
                                  for l in labels]
    return table, long, warnings


def add_human_columns(table: pd.DataFrame, study) -> pd.DataFrame:
    human = load_human(study)["table"]
    if human.empty:
        return table
    for q, g in human.groupby("question", sort=False):
        g = g.set_index("method")
        col = f"human.{q}"
        table[col] = [g["mean"].get(m.split("/")[-1]) for m in table.index]
        table[f"{col} 95% CI"] = [f"[{g.loc[m, 'ci95_low']:.2f}, {g.loc[m, 'ci95_high']:.2f}]"
                                  if m in g.index else "" for m in (x.split("/")[-1] for x in table.index)]
    return table


def human_long(study, labels: list[str]) -> pd.DataFrame:
    """A human study's means and intervals as summary rows (metric `human.QUESTION`) for the table downloads."""
    human = load_human(study)["table"]
    rows = []
    for _, r in human.iterrows():
        for label in labels:
            if label.split("/")[-1] == r["method"]:
                rows.append({"method": label, "metric": f"human.{r['question']}", "n": r.get("n_ratings", 1),
                             "mean": r["mean"], "ci95_low": r["ci95_low"], "ci95_high": r["ci95_high"],
                             "spec_id": ""})
    return pd.DataFrame(rows)


def downloads(long: pd.DataFrame, columns: list[str], study=None) -> dict[str, str]:
    """The shown columns as eval.table renders them (the same table as `python -m eval.table`), per format."""
    summary = long.assign(method=long["label"])
    labels = list(dict.fromkeys(summary["method"]))
    if study is not None:
        summary = pd.concat([summary, human_long(study, labels)], ignore_index=True)
    metrics = list(dict.fromkeys(c.split(" [")[0] for c in columns))
    table = paper_table.build(summary, labels, metrics)
    return {fmt: paper_table.render(table, fmt) for fmt in paper_table.FORMATS}


def default_columns(columns: list[str]) -> list[str]:
    """The headline metrics (eval.metrics' Field.headline) and the human study's means."""
    def headline(column):
        declared = field_info(column.split(" [")[0])
        return column.startswith("human.") or (declared is not None and declared.headline)

    return [c for c in columns if headline(c)]


def shown_frames(runs):
    """leaderboard_frames with its warnings shown; None (and a message) when no run has a summary yet."""
    table, long, warnings = leaderboard_frames(runs)
    if long.empty:
        st.info("No summary.csv in the selected runs yet (a run writes it when its videos are scored).")
        return None
    for w in warnings:
        st.warning(w)
    return table, long


def render(runs, studies):
    frames = shown_frames(runs)
    if frames is None:
        return
    table, long = frames
    study = None
    if studies:
        options = ["(none)"] + [str(s) for s in studies]
        choice = st.selectbox("Human-study columns from", options, index=1 if len(studies) == 1 else 0)
        if choice != "(none)":
            study = next(s for s in studies if str(s) == choice)
            table = add_human_columns(table, study)
    show_protocol = st.checkbox("Show fair-protocol facts (trained parameters, times, memory)", value=False)
    metrics = [c for c in table.columns if not c.endswith(" 95% CI") and (show_protocol or
                                                                           not c.startswith("protocol."))]
    columns = st.multiselect("Columns", metrics, default=default_columns(metrics),
                             help="the headline metrics by default; variants (CLIPScore, consecutive-frame "
                                  "consistency, …) on request")
    shown = table[[c for col in columns for c in (col, f"{col} 95% CI") if c in table.columns]]
    st.dataframe(shown, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4f")
                                                        for c in shown.columns if not c.endswith(" 95% CI")})
    if columns:
        files = downloads(long, [c for c in columns if not c.startswith("human.")],
                          study if any(c.startswith("human.") for c in columns) else None)
        st.caption("Downloads: the paper's table of the shown columns, as `python -m eval.table` writes it "
                   "(labels with ↑/↓, mean ± half the 95% CI, the best of each column in bold).")
        for col, (fmt, name, mime) in zip(st.columns(3), (("csv", "leaderboard.csv", "text/csv"),
                                                           ("md", "leaderboard.md", "text/markdown"),
                                                           ("latex", "leaderboard.tex", "text/x-tex"))):
            col.download_button(f"Download {dict(csv='CSV', md='Markdown', latex='LaTeX')[fmt]}", files[fmt],
                                file_name=name, mime=mime)
    with st.expander("Metric specs (what exactly each column measured)"):
        for run in runs:
            specs = {spec_id({"metric": family, **spec}): spec
                     for family, spec in load_run_json(run.path).get("metric_specs", {}).items()}
            ids = long[long["run"] == run.name][["metric", "spec_id"]].drop_duplicates()
            for _, r in ids[ids["spec_id"] != ""].iterrows():
                st.markdown(f"**{run.name}** · `{r['metric']}` · spec `{r['spec_id']}`")
                if r["spec_id"] in specs:
                    st.code(json.dumps(specs[r["spec_id"]], indent=1, sort_keys=True), language="json")
