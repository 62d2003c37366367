"""Human-study results (`python -m human_study aggregate`): table, score distributions, agreement, exclusions."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard.data import load_human


def render(runs, studies):
    if not studies:
        st.info("No human-study results under the runs root or the selected runs. Make them with "
                "`python -m human_study export …` and `python -m human_study aggregate … --out DIR` "
                "(put DIR inside the run directory to see it here).")
        return
    folder = st.selectbox("Study results", studies, format_func=str)
    data = load_human(folder)
    table = data["table"]
    if table.empty:
        st.warning(f"{folder}/table.csv is empty.")
        return
    st.subheader("Mean score (Likert 1–5) with 95% CI, bootstrap over raters and prompts")
    wide = table.pivot(index="method", columns="question", values="mean")
    st.dataframe(wide, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.2f")
                                                       for c in wide.columns})
    bars = alt.Chart(table).encode(x=alt.X("method:N", title=None), y=alt.Y("mean:Q", scale=alt.Scale(domain=[1, 5])))
    chart = (bars.mark_bar() + bars.mark_rule(strokeWidth=2).encode(y="ci95_low:Q", y2="ci95_high:Q")).facet(
        column="question:N")
    st.altair_chart(chart)
    answers = data["answers"]
    if not answers.empty:
        st.subheader("Score distributions (kept raters, method videos)")
        kept = answers[(answers["kept"]) & (answers["kind"] == "method")]
        counts = kept.groupby(["method", "question", "score"], as_index=False).size()
        dist = alt.Chart(counts).mark_bar().encode(x=alt.X("score:O"), y=alt.Y("size:Q", title="ratings"),
                                                  color="method:N", xOffset="method:N").facet(column="question:N")
        st.altair_chart(dist)
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Agreement")
        st.dataframe(data["agreement"], width="stretch", hide_index=True)
    with c2:
        st.subheader("Exclusions")
        st.dataframe(data["exclusions"], width="stretch", hide_index=True)
    if not data["differences"].empty:
        st.subheader("Paired differences (95% CI, bootstrap over raters and prompts)")
        st.dataframe(data["differences"], width="stretch", hide_index=True)
    if not data["tests"].empty:
        st.subheader("Tests")
        st.dataframe(data["tests"], width="stretch", hide_index=True)
