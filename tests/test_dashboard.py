"""The Streamlit dashboard on fixture run directories: AppTest on every page, and a headless-Chromium smoke test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CHROMIUM, REPO, run_cli
from tests.fixture_runs import make_run

PAGES = ["Leaderboard", "Charts", "Paired", "Gallery", "Drill-down", "Human study"]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """alpha (3 methods, with a human study inside), beta (2 methods, a different CLIP spec), an empty run, a
    partial one (results but no summary yet)."""
    base = tmp_path_factory.mktemp("dash")
    root = base / "runs"
    root.mkdir()
    shutil.move(make_run(base / "a", ("vmc", "tav", "t2v")), root / "alpha")
    beta = make_run(base / "b", ("vmc", "inversion"), seeds=(0, 1))
    summary = pd.read_csv(beta / "summary.csv")
    summary.loc[summary["spec_id"] == "spec-clip", "spec_id"] = "spec-clip-other"
    summary.to_csv(beta / "summary.csv", index=False)
    shutil.move(beta, root / "beta")
    (root / "empty").mkdir()
    (root / "empty" / "run.json").write_text("{}")
    partial = make_run(base / "p", ("vmc",))
    (partial / "summary.csv").unlink()
    shutil.move(partial, root / "partial")

    study = base / "study"
    run_cli("-m", "human_study", "export", "--run", root / "alpha", "--methods", "vmc,tav,t2v", "--out", study,
            "--checks", "0")
    import json

    public = json.loads((study / "rater" / "study.json").read_text())
    rng = np.random.default_rng(0)
    rows = [{"rater_id": f"r{r}", "item_id": i["item_id"], "blind_id": c["blind_id"], "question": q["id"],
             "score": int(rng.integers(1, 6))}
            for r in range(4) for i in public["items"] for c in i["candidates"] for q in public["questions"]]
    pd.DataFrame(rows).to_csv(base / "answers.csv", index=False)
    run_cli("-m", "human_study", "aggregate", "--study", study, "--answers", base / "answers.csv",
            "--out", root / "alpha" / "human")
    return root


def app(root, runs=None, page=None):
    from streamlit.testing.v1 import AppTest

    os.environ["VMC_DASHBOARD_RUNS"] = str(root)
    at = AppTest.from_file(str(REPO / "dashboard" / "main.py"), default_timeout=120)
    at.run()
    if runs is not None:
        at.sidebar.multiselect[0].set_value(runs)
    if page is not None:
        at.sidebar.radio[0].set_value(page)
    return at.run()


def html_elements(at) -> list[str]:
    found = []

    def walk(node):
        for child in getattr(node, "children", {}).values():
            if type(child).__name__ == "Html":
                found.append(child.proto.body)
            walk(child)

    walk(at.main)
    return found


def test_every_page_renders(runs_root):
    for page in PAGES:
        at = app(runs_root, ["alpha"], page)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.header[0].value == page
    human = app(runs_root, ["alpha"], "Human study")
    assert "Paired differences (95% CI, bootstrap over raters and prompts)" in [h.value for h in human.subheader]


def test_comparing_runs_keeps_different_specs_apart(runs_root):
    at = app(runs_root, ["alpha", "beta", "partial"], "Leaderboard")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "different specs" in warnings and "summary.csv is not written yet" in warnings
    columns = list(at.dataframe[0].value.columns)
    assert "text_alignment [spec-clip]" in columns and "text_alignment [spec-clip-other]" in columns
    for page in PAGES[1:]:
        assert not app(runs_root, ["alpha", "beta", "partial"], page).exception, page


def test_leaderboard_equals_summary_csv(runs_root):
    at = app(runs_root, ["alpha"], "Leaderboard")
    chooser = next(m for m in at.multiselect if m.label == "Columns")
    assert "clip_score" in chooser.options and "clip_score" not in chooser.value  # a variant: on request
    assert {"text_alignment", "oracle_motion"} <= set(chooser.value)
    chooser.set_value(chooser.options).run()  # every column
    shown = at.dataframe[0].value
    summary = pd.read_csv(runs_root / "alpha" / "summary.csv")
    human = pd.read_csv(runs_root / "alpha" / "human" / "table.csv")
    checked = 0
    for _, row in summary.iterrows():
        if row["metric"].startswith("protocol."):
            continue
        assert shown.loc[row["method"], row["metric"]] == pytest.approx(row["mean"])
        assert shown.loc[row["method"], f"{row['metric']} 95% CI"] == f"[{row['ci95_low']:.4g}, {row['ci95_high']:.4g}]"
        checked += 1
    assert checked == 3 * 6
    for _, row in human.iterrows():  # human-study columns, found inside the run
        assert shown.loc[row["method"], f"human.{row['question']}"] == pytest.approx(row["mean"])


def test_the_url_holds_the_selection_and_a_link_restores_it(runs_root):
    from streamlit.testing.v1 import AppTest

    at = app(runs_root)
    names = at.sidebar.multiselect[0].options
    assert names[0] == "partial" and names.index("beta") < names.index("alpha")  # the most recently written first
    assert at.sidebar.multiselect[0].value == ["beta"]  # the newest with a summary
    at.sidebar.multiselect[0].set_value(["alpha"]).run()
    at.sidebar.multiselect[1].set_value(["vmc", "t2v"]).run()
    assert at.query_params["runs"] == "alpha" and at.query_params["methods"] == "vmc,t2v"

    os.environ["VMC_DASHBOARD_RUNS"] = str(runs_root)
    shared = AppTest.from_file(str(REPO / "dashboard" / "main.py"), default_timeout=120)
    shared.query_params.update({"runs": "alpha", "methods": "vmc,t2v", "page": "Leaderboard"})
    shared.run()
    assert not shared.exception
    assert shared.sidebar.multiselect[0].value == ["alpha"] and shared.sidebar.multiselect[1].value == ["vmc", "t2v"]
    assert list(shared.dataframe[0].value.index) == ["vmc", "t2v"] and shared.header[0].value == "Leaderboard"
    latex = next(b for b in shared.get("download_button") if "LaTeX" in b.proto.label)
    assert latex  # the download is eval.table's (tests/test_table.py checks its content)


def test_paired_page_equals_eval_compare(runs_root, tmp_path):
    """The page's table is eval.compare's CSV for the same run, methods and unit."""
    shutil.copy(runs_root / "alpha" / "results.jsonl", tmp_path / "results.jsonl")
    run_cli("-m", "eval.compare", tmp_path, "--methods", "tav,vmc,t2v", "--unit", "case")
    expected = pd.read_csv(tmp_path / "compare_tav_vs_vmc+t2v.csv")
    at = app(runs_root, ["alpha"], "Paired")
    at.selectbox[0].set_value("tav").run()
    at.multiselect[0].set_value(["vmc", "t2v"]).run()
    at.radio[0].set_value("case").run()
    assert not at.exception
    shown = at.dataframe[0].value.sort_values(["metric", "b"]).reset_index(drop=True)
    expected = expected[expected["n"] > 0].sort_values(["metric", "b"]).reset_index(drop=True)
    assert list(shown["metric"] + shown["b"]) == list(expected["metric"] + expected["b"]) and len(shown) > 3
    for column in ("n", "n_units", "mean_diff", "ci95_low", "ci95_high", "p", "p_holm"):
        assert shown[column].to_numpy(float) == pytest.approx(expected[column].to_numpy(float), rel=1e-5,
                                                              nan_ok=True), column
    assert list(shown["significant"]) == list(expected["significant"])

    run_cli("-m", "eval.compare", tmp_path, "--methods", "tav,vmc,t2v", "--by-case")
    expected = pd.read_csv(tmp_path / "compare_tav_vs_vmc+t2v_by_case.csv")
    at.toggle[0].set_value(True).run()
    at.radio[0].set_value("prompt").run()
    assert not at.exception
    shown = at.dataframe[0].value
    key = ["metric", "case", "b"]
    shown = shown.sort_values(key).reset_index(drop=True)
    expected = expected[expected["n"] > 0].sort_values(key).reset_index(drop=True)
    assert shown[key].equals(expected[key]) and expected["case"].nunique() > 1
    assert shown["p_holm"].to_numpy(float) == pytest.approx(expected["p_holm"].to_numpy(float), rel=1e-5, nan_ok=True)


def test_gallery_filters_change_what_is_shown(runs_root):
    at = app(runs_root, ["alpha"], "Gallery")
    every = [h for h in html_elements(at) if "<video" in h]
    assert len(every) == 4 * (3 + 1)  # four prompts: the reference and three methods each
    at.multiselect[3].set_value(["tav"]).run()
    only = [h for h in html_elements(at) if "<video" in h]
    assert len(only) == 4 * 2 and not at.exception
    at.multiselect[0].set_value(["fall"]).run()
    assert len([h for h in html_elements(at) if "<video" in h]) == 2 * 2
    assert all("/run-files/" in h for h in only)  # served from disk by URL, not embedded bytes


def test_empty_or_missing_runs_root_shows_a_message(tmp_path):
    at = app(tmp_path / "nothing")
    assert not at.exception and "python -m eval.run" in at.info[0].value
    (tmp_path / "only-empty").mkdir()
    (tmp_path / "only-empty" / "run.json").write_text("{}")
    for page in PAGES:
        at = app(tmp_path, ["only-empty"], page)
        assert not at.exception and "no scored videos yet" in " ".join(w.value for w in at.warning)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt install chromium)")
def test_served_dashboard_plays_every_video_in_chromium(runs_root, tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
                               "--server.headless", "true", "--server.port", str(port),
                               "--browser.gatherUsageStats", "false", "--", "--runs", str(runs_root)],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError("the dashboard did not start:\n" + (server.stdout.read() if
                                                                             server.poll() is not None else ""))
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/?page=Gallery&runs=alpha")
            page.wait_for_selector("video", timeout=60_000)
            page.wait_for_function("document.querySelectorAll('video').length >= 16", timeout=60_000)
            page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 2 || v.error)",
                                   timeout=60_000)
            states = page.evaluate("[...document.querySelectorAll('video')].map(v => [v.readyState, v.error && v.error.code, v.currentSrc])")
            assert all(state >= 2 and err is None for state, err, _ in states), states
            page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
            assert (tmp_path / "gallery.png").stat().st_size > 10_000
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
