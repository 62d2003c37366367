"""Side by side: the reference clip and every method's output for each (case, prompt, seed), paginated.

Videos are served from disk by URL (dashboard/media.py), never read into the server's memory."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard.data import load_records, load_table, reference_path, video_path
from dashboard.media import video_html

GROUPS_PER_PAGE = 6


def gallery_rows(runs) -> pd.DataFrame:
    frames = []
    for run in runs:
        records = run.keep(load_table(run.path))
        if not records.empty:
            frames.append(records.assign(run=run.name, label=[f"{run.name}/{m}" if len(runs) > 1 else m
                                                              for m in records["method"]]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def render(runs, studies):
    rows = gallery_rows(runs)
    if rows.empty:
        st.info("No videos in the selected runs yet.")
        return
    c1, c2, c3, c4 = st.columns(4)
    cases = c1.multiselect("Case", sorted(rows["case"].unique()))
    prompts = c2.multiselect("Prompt", sorted(rows["prompt"].unique()))
    seeds = c3.multiselect("Seed", sorted(rows["seed"].unique()))
    methods = c4.multiselect("Method", list(dict.fromkeys(rows["label"])))
    for column, chosen in (("case", cases), ("prompt", prompts), ("seed", seeds), ("label", methods)):
        if chosen:
            rows = rows[rows[column].isin(chosen)]
    groups = list(rows.groupby(["case", "prompt", "seed"], sort=True))
    if not groups:
        st.info("Nothing matches these filters.")
        return
    pages = math.ceil(len(groups) / GROUPS_PER_PAGE)
    page = st.number_input(f"Page (of {pages})", 1, pages, 1) if pages > 1 else 1
    st.caption(f"{len(groups)} prompt(s), {len(rows)} video(s)")
    labels = list(dict.fromkeys(rows["label"]))
    run_by_name = {r.name: r for r in runs}
    for (case, prompt, seed), g in groups[(page - 1) * GROUPS_PER_PAGE: page * GROUPS_PER_PAGE]:
        st.markdown(f"**{case}** · seed {seed} · {prompt}")
        cols = st.columns(len(labels) + 1)
        first = g.iloc[0]
        run = run_by_name[first["run"]].path
        ref = reference_path(run, load_records(run)[first["key"]])
        with cols[0]:
            if ref is not None and ref.is_file():
                st.html(video_html(ref, "reference"))
            else:
                st.caption("reference: not available" if ref is None else f"reference is not a video file: {ref}")
        for col, label in zip(cols[1:], labels):
            sel = g[g["label"] == label]
            with col:
                if sel.empty:
                    st.caption(f"{label}: no video")
                else:
                    r = sel.iloc[0]
                    run = run_by_name[r["run"]].path
                    st.html(video_html(video_path(run, load_records(run)[r["key"]]), label))
