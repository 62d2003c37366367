"""Bars with 95% CI error bars per metric, a radar across metrics (normalised per metric), per-case breakdown."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.data import load_table
from eval.metrics import field_info
from dashboard.views.leaderboard import method_label, shown_frames



def lower_is_better(metric: str) -> bool:
    """For a column name "field" or "field (spec …)": whether its metric declares lower values better."""
    declared = field_info(metric.split(" ")[0])
    return declared is not None and not declared.higher_is_better


def radar_frame(long: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Polygon vertices per method: each metric min-max normalised over the methods (inverted where lower is
    better), placed on its own spoke."""
    rows = []
    for k, metric in enumerate(metrics):
        sel = long[long["column"] == metric]
        lo, hi = sel["mean"].min(), sel["mean"].max()
        angle = 2 * math.pi * k / len(metrics)
        for _, r in sel.iterrows():
            v = 0.5 if hi == lo else (r["mean"] - lo) / (hi - lo)
            v = 1 - v if lower_is_better(metric) else v
            rows.append({"method": r["label"], "metric": metric, "score": v, "order": k,
                         "x": v * math.sin(angle), "y": v * math.cos(angle)})
    df = pd.DataFrame(rows)
    closing = df[df["order"] == 0].assign(order=len(metrics))  # close each polygon
    return pd.concat([df, closing], ignore_index=True)


def render(runs, studies):
    frames = shown_frames(runs)
    if frames is None:
        return
    long = frames[1]
    metrics = [m for m in dict.fromkeys(long["column"]) if not m.startswith("protocol.")]
    metric = st.selectbox("Metric", metrics)
    sel = long[long["column"] == metric]
    base = alt.Chart(sel).encode(x=alt.X("label:N", title="method", sort=None))
    bars = base.mark_bar().encode(y=alt.Y("mean:Q", title=metric), tooltip=["label", "mean", "ci95_low", "ci95_high", "n"])
    errors = base.mark_rule(strokeWidth=2).encode(y="ci95_low:Q", y2="ci95_high:Q")
    st.altair_chart(bars + errors, width="stretch")
    st.caption("Bars: mean; lines: 95% CI (Student t over target prompts, each the mean of its seeds).")

    if len(metrics) >= 3:
        st.subheader("Across metrics")
        radar = radar_frame(long, metrics)
        spokes = pd.DataFrame([{"metric": m, "x": 1.1 * math.sin(2 * math.pi * k / len(metrics)),
                                "y": 1.1 * math.cos(2 * math.pi * k / len(metrics))} for k, m in enumerate(metrics)])
        scale = alt.Scale(domain=[-1.3, 1.3])
        lines = alt.Chart(radar).mark_line(point=True).encode(
            x=alt.X("x:Q", scale=scale, axis=None), y=alt.Y("y:Q", scale=scale, axis=None), color="method:N",
            order="order:Q", tooltip=["method", "metric", "score"])
        labels = alt.Chart(spokes).mark_text(fontSize=11).encode(x="x:Q", y="y:Q", text="metric:N")
        st.altair_chart((lines + labels).properties(height=480), width="stretch")
        st.caption("Each metric min–max normalised over the shown methods (lower-is-better metrics inverted); "
                   "the outer ring is the best method on that metric.")

    st.subheader("Per case")
    name = metric.split(" ")[0]
    frames = []
    several = len(runs) > 1
    for run in runs:
        records = run.keep(load_table(run.path))
        if f"metric.{name}" in records:
            frames.append(pd.DataFrame({"method": [method_label(run, m, several) for m in records["method"]],
                                        "case": records["case"], "value": records[f"metric.{name}"]}))
    if frames:
        per_case = pd.concat(frames).dropna().groupby(["case", "method"], as_index=False)["value"].mean()
        chart = alt.Chart(per_case).mark_bar().encode(x=alt.X("method:N", title=None), y=alt.Y("value:Q", title=name),
                                                      color="method:N", column=alt.Column("case:N"))
        st.altair_chart(chart)
