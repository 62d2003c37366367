"""The HTML form filled in headless Chromium (Debian's `chromium`, driven by Playwright) aggregates correctly."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import CHROMIUM, run_cli
from tests.fixture_runs import make_run

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt install chromium)")

METHODS = ["vmc", "tav", "t2v"]
SCORES = {"vmc": 5, "tav": 3, "t2v": 2}
XSS = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=1</script> a red star is moving right"
COMPLETION = "https://app.prolific.com/submissions/complete?cc=C0DE"
POST_URL = "https://collect.example.org/answers"


def fill_form(browser, url, key, download_dir, posted=None):
    """Rate every video by its method (checks answered as an attentive rater would); returns (answers path,
    prompts in the order shown). With `posted` (a list), the form POSTs its answers to a stub collector, which
    appends them there, and the rater is expected to land on the Prolific completion page."""
    context = browser.new_context(accept_downloads=True)
    if posted is not None:
        def collect(route):
            cors = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "Content-Type"}
            if route.request.method == "POST":
                posted.append(json.loads(route.request.post_data))
            route.fulfill(status=200, body="ok", headers=cors)

        context.route(POST_URL, collect)
        context.route(COMPLETION, lambda route: route.fulfill(status=200, body="<p>completed</p>",
                                                             content_type="text/html"))
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.click("#start-btn")
    prompts = []
    while page.is_visible("#item"):
        page.wait_for_selector("#candidates .card")
        prompts.append(page.inner_text("#prompt"))
        # locked until watched to the end, then every rating opens
        page.wait_for_function("document.querySelectorAll('#candidates input').length > 0 && "
                               "[...document.querySelectorAll('#candidates input')].every(i => !i.disabled)",
                               timeout=30_000)
        media = page.evaluate("[...document.querySelectorAll('video')].map(v => [v.readyState, v.error && v.error.code])")
        assert all(state >= 2 and err is None for state, err in media), media
        for blind in page.eval_on_selector_all("#candidates .card", "cards => cards.map(c => c.dataset.blind)"):
            entry = key["blind"][blind]
            for q in ("motion", "appearance", "text", "temporal"):
                score = {"method": SCORES.get(entry["method"]), "reference_check": 5, "mismatch_check": 1}[entry["kind"]]
                page.check(f'input[name="{blind}__{q}"][value="{score}"]')
        page.click("#next-btn")
    if posted is not None:
        page.wait_for_url(COMPLETION, timeout=30_000)
        context.close()
        return None, prompts
    assert page.is_visible("#done")
    assert page.get_attribute("#complete-link", "href") == COMPLETION
    with page.expect_download() as info:
        page.click("#download-json")
    path = download_dir / info.value.suggested_filename
    info.value.save_as(path)
    assert page.evaluate("window.__xss") is None and not errors, errors
    context.close()
    return path, prompts


def test_html_form_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    run = make_run(tmp_path, METHODS, cases={"right": [XSS, "a blue circle is moving right"],
                                             "fall": ["a green square is falling", "a white star is falling"]})
    study = tmp_path / "study"
    run_cli("-m", "human_study", "export", "--run", run, "--methods", ",".join(METHODS), "--out", study,
            "--checks", "1", "--completion-url", COMPLETION)
    key = json.loads((study / "key.json").read_text())
    index = (study / "rater" / "index.html").resolve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        # the ratings stay locked until the videos have played
        page = browser.new_page()
        page.goto(f"file://{index}?rater=early")
        page.click("#start-btn")
        assert page.eval_on_selector_all("#candidates input", "xs => xs.length > 0 && xs.every(x => x.disabled)")
        page.close()
        answers, orders = [], []
        for rater in ("alice", "bob"):
            path, prompts = fill_form(browser, f"file://{index}?PROLIFIC_PID={rater}", key, tmp_path)
            answers.append(path)
            orders.append(prompts)
        # the same study with a collecting endpoint: answers POSTed, then straight back to Prolific
        posting = tmp_path / "study-post"
        run_cli("-m", "human_study", "export", "--run", run, "--methods", ",".join(METHODS), "--out", posting,
                "--checks", "1", "--completion-url", COMPLETION, "--post-url", POST_URL)
        posted = []
        fill_form(browser, f"file://{(posting / 'rater' / 'index.html').resolve()}?PROLIFIC_PID=carol", key,
                  tmp_path, posted=posted)
        browser.close()
    assert len(posted) == 1 and posted[0]["rater_id"] == "carol" and posted[0]["complete"]
    (tmp_path / "carol.json").write_text(json.dumps(posted[0]))
    answers.append(tmp_path / "carol.json")
    assert XSS in orders[0]  # shown literally, as text
    assert sorted(orders[0]) == sorted(orders[1]) and len(orders[0]) == 4
    run_cli("-m", "human_study", "aggregate", "--study", study, "--answers", *answers, "--out", tmp_path / "agg")
    table = pd.read_csv(tmp_path / "agg" / "table.csv")
    for _, row in table.iterrows():
        assert row["mean"] == SCORES[row["method"]] and row["n_raters"] == 3 and row["n_ratings"] == 12
    excl = pd.read_csv(tmp_path / "agg" / "exclusions.csv")
    assert excl["raters_removed"].sum() == 0
