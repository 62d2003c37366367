"""Paired differences between the methods of one run, as `python -m eval.compare` computes them: A − B per
metric over the videos both made, the 95% CI over units, the t-test's p and Holm's correction over the
comparisons. The leaderboard's unpaired intervals carry the between-prompt spread; these do not."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.data import load_records, metric_sort_key
from eval.compare import compare
from eval.results import UNITS
from eval.spreadsheet import frame_to_csv


def render(runs, studies):
    if not runs:
        return
    run = runs[0] if len(runs) == 1 else next(r for r in runs if r.name == st.selectbox(
        "Run", [r.name for r in runs], help="paired comparisons are within one run"))
    records = [r for r in load_records(run.path).values() if run.methods is None or r.method in run.methods]
    methods = list(dict.fromkeys(r.method for r in records))
    if len(methods) < 2:
        st.info(f"Run `{run.name}` has fewer than two methods: nothing to pair.")
        return
    a = st.selectbox("Method A", methods)
    others = st.multiselect("Against", [m for m in methods if m != a], default=[m for m in methods if m != a])
    by_case = st.toggle("Per case", help="a row per case and comparison, Holm-corrected over all of them")
    units = [u for u in UNITS if not (by_case and u == "case")]
    unit = st.radio("Unit", units, horizontal=True, help="; ".join(f"{k}: {UNITS[k]}" for k in units))
    if not others:
        st.info("Pick at least one method to compare with.")
        return
    metrics = sorted({m for r in records for m in r.metrics}, key=metric_sort_key)
    table = compare(records, a, others, metrics, unit, by_case)
    table = table[table["n"] > 0]
    st.dataframe(table, width="stretch", hide_index=True,
                 column_config={**{c: st.column_config.NumberColumn(format="%.4f")
                                   for c in ("mean_diff", "ci95_low", "ci95_high")},
                                **{c: st.column_config.NumberColumn(format="%.2e") for c in ("p", "p_holm")}})
    family = f"{len(others)} comparison(s)" + (" × the cases" if by_case else "")
    st.caption(f"A − B over the videos both methods made (same case, prompt and seed); 95% CI and paired "
               f"t-test over {unit} units; p_holm: each metric's p adjusted over the {family} (Holm); "
               f"significant: p_holm < 0.05; direction: which way is better for the metric, better: the method "
               f"whose mean is the better one.")
    st.download_button("CSV", frame_to_csv(table, index=False), mime="text/csv",
                       file_name=f"compare_{a}_vs_{'+'.join(others)}{'_by_case' if by_case else ''}.csv")
    metric = st.selectbox("Metric", list(dict.fromkeys(table["metric"])))
    sel = table[table["metric"] == metric].assign(
        row=lambda t: (t["case"] + " · " + t["b"]) if by_case else t["b"])
    base = alt.Chart(sel).encode(y=alt.Y("row:N", title=f"{a} −", sort=None))
    chart = (base.mark_rule(strokeWidth=2).encode(x=alt.X("ci95_low:Q", title=f"{metric}: A − B"), x2="ci95_high:Q")
             + base.mark_point(filled=True, size=80).encode(x="mean_diff:Q", color="significant:N",
                                                             tooltip=["row", "mean_diff", "ci95_low", "ci95_high",
                                                                      "p", "p_holm"])
             + alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q"))
    st.altair_chart(chart, width="stretch")
