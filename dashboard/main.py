"""The dashboard script (served by `streamlit run dashboard/app.py`): pick runs in the sidebar, then a page."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import streamlit as st

from dashboard.data import find_human_studies, find_runs, load_table, unreadable
from dashboard.views import charts, drilldown, gallery, human, leaderboard, paired

PAGES = {"Leaderboard": leaderboard.render, "Charts": charts.render, "Paired": paired.render,
         "Gallery": gallery.render, "Drill-down": drilldown.render, "Human study": human.render}


def runs_root() -> Path:
    """`-- --runs DIR` on the command line, else $VMC_DASHBOARD_RUNS, else `runs/`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--runs")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return Path(args.runs or os.environ.get("VMC_DASHBOARD_RUNS") or "runs")


def listed(param: str) -> list[str]:
    """The comma-separated names of a URL query parameter (`?runs=a,b`)."""
    return [n for n in st.query_params.get(param, "").split(",") if n]


def main():
    st.set_page_config(page_title="vmc-suite dashboard", layout="wide")
    root = runs_root()
    st.sidebar.title("vmc-suite")
    st.sidebar.caption(f"runs root: `{root}`")
    runs = find_runs(root)
    if not runs:
        st.info(f"No runs under `{root}`. Make one with `python -m eval.run --methods vmc,tav` "
                f"(or point the dashboard elsewhere: `streamlit run dashboard/app.py -- --runs DIR`).")
        return
    names = [r.name for r in runs]  # the most recently written first
    asked = [n for n in listed("runs") if n in names]
    default = asked or [r.name for r in runs if r.status == "ok"][:1] or names[:1]
    chosen = st.sidebar.multiselect("Runs", names, default=default, help="pick one run, or several to compare")
    selected = [r for r in runs if r.name in chosen]
    for r in list(selected):
        problem = unreadable(r)
        if problem:
            st.error(f"Run `{r.name}` cannot be read, so it is left out: {problem}")
            selected.remove(r)
    tables = [load_table(r.path) for r in selected if r.status != "empty"]
    offered = list(dict.fromkeys(m for t in tables if "method" in t for m in t["method"]))
    asked = [m for m in listed("methods") if m in offered]
    methods = st.sidebar.multiselect("Methods", offered, default=asked or offered,
                                     help="the methods every page shows (all when none is picked)")
    page_names = list(PAGES)
    wanted = st.query_params.get("page", page_names[0])
    page = st.sidebar.radio("Page", page_names, index=page_names.index(wanted) if wanted in page_names else 0)
    st.query_params["page"] = page  # the page and the selection are in the URL: a link restores them
    st.query_params["runs"] = ",".join(chosen)
    if methods and set(methods) != set(offered):
        st.query_params["methods"] = ",".join(methods)
    elif "methods" in st.query_params:
        del st.query_params["methods"]
    if not selected:
        st.info("Pick at least one run in the sidebar.")
        return
    if methods and set(methods) != set(offered):
        selected = [replace(r, methods=tuple(methods)) for r in selected]
    for r in selected:
        if r.status != "ok":
            st.warning(f"Run `{r.name}`: {r.message}.")
    if not selected:
        return
    studies = find_human_studies([root] + [r.path for r in selected])
    st.header(page)
    PAGES[page]([r for r in selected if r.status != "empty"], studies)


main()
