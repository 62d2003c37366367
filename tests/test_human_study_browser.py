"""The HTML form filled in headless Chromium (Debian's `chromium`, driven by Playwright) aggregates correctly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CHROMIUM, run_cli, run_main
from tests.fixture_runs import make_run

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt install chromium)")

METHODS = ["vmc", "tav", "t2v"]
SCORES = {"vmc": 5, "tav": 3, "t2v": 2}
XSS = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=1</script> a red star is moving right"
COMPLETION = "https://app.prolific.com/submissions/complete?cc=C0DE"
POST_URL = "https://collect.example.org/answers"
QUESTIONS = ("motion", "appearance", "text", "temporal")


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


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """Three sets of two videos and no attention checks: quick to watch and rate."""
    from human_study.__main__ import main

    root = tmp_path_factory.mktemp("small")
    run = make_run(root, METHODS[:2], cases={"right": ["a red star is moving right"],
                                             "fall": ["a green square is falling"], "up": ["a white star is rising"]})
    assert run_main(main, "export", "--run", run, "--methods", ",".join(METHODS[:2]), "--out", root / "study",
                    "--checks", "0")[0] == 0
    return root / "study"


def open_form(browser, url):
    """(page, page errors) of the form opened at `url`, started."""
    page = browser.new_context(accept_downloads=True).new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.click("#start-btn")
    return page, errors


def shown_videos(page):
    page.wait_for_selector("#candidates .card")
    return page.eval_on_selector_all("#candidates .card", "cards => cards.map(c => c.dataset.blind)")


def rate(page, scores):
    """Give each video its score (blind id -> score) on every question, once it unlocks (it and the reference
    watched to the end)."""
    page.wait_for_function("blinds => blinds.every(b => [...document.querySelectorAll(`input[name^='${b}__']`)]"
                           ".every(i => !i.disabled))", arg=list(scores), timeout=30_000)
    for blind, score in scores.items():
        for q in QUESTIONS:
            page.check(f'input[name="{blind}__{q}"][value="{score}"]')


def download_json(page, folder):
    with page.expect_download() as info:
        page.click("#download-json")
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required",
                                                             "--mute-audio"])


def test_unplayable_videos_are_reported_and_skipped(small_study, tmp_path, capsys):
    """A missing video says so and may be skipped, a missing reference skips its set; both are reported in the
    answers, survive a reload, and aggregate as reports rather than ratings."""
    from playwright.sync_api import sync_playwright

    from human_study.__main__ import main

    study = tmp_path / "study"
    shutil.copytree(small_study, study)
    key = json.loads((study / "key.json").read_text())
    items = json.loads((study / "rater" / "study.json").read_text())["items"]
    no_reference, missing = items[0]["item_id"], items[1]["candidates"][0]["blind_id"]
    by_method = {blind: SCORES[entry["method"]] for blind, entry in key["blind"].items()}
    (study / "rater" / items[0]["reference"]).unlink()
    (study / "rater" / items[1]["candidates"][0]["video"]).unlink()
    with sync_playwright() as p:
        browser = launch(p)
        page, errors = open_form(browser, f"file://{(study / 'rater' / 'index.html').resolve()}?rater=dave")
        while page.is_visible("#item"):
            blinds = shown_videos(page)
            if key["blind"][blinds[0]]["item_id"] == no_reference:
                page.wait_for_selector("#reference-skip", state="visible")
                assert page.inner_text("#reference-hint") == "This video could not be played."
                assert page.is_disabled("#next-btn")
                page.click("#reference-skip")
                continue
            if missing in blinds:
                card = f'#candidates .card[data-blind="{missing}"]'
                page.wait_for_selector(f"{card} button.skip", state="visible")
                assert page.inner_text(f"{card} .hint") == "This video could not be played."
                page.click(f"{card} button.skip")
                assert page.inner_text(f"{card} .hint") == "Reported as unplayable and skipped."
                rate(page, {b: by_method[b] for b in blinds if b != missing})
                page.reload()
                page.click("#start-btn")
                assert shown_videos(page) == blinds and page.is_enabled("#next-btn")
                assert page.inner_text(f"{card} .hint") == "Reported as unplayable and skipped."
            else:
                rate(page, {b: by_method[b] for b in blinds})
            page.click("#next-btn")
        path = download_json(page, tmp_path)
        with page.expect_download() as info:
            page.click("#download-csv")
        csv_lines = Path(info.value.path()).read_text().splitlines()
        assert not errors, errors
        browser.close()
    answers = json.loads(path.read_text())
    assert answers["complete"]
    reports = [a for a in answers["answers"] if a["score"] == "unplayable"]
    assert sorted(reports, key=lambda a: a["item_id"]) == [
        {"item_id": no_reference, "blind_id": "reference", "question": "", "score": "unplayable"},
        {"item_id": items[1]["item_id"], "blind_id": missing, "question": "", "score": "unplayable"}]
    assert len(answers["answers"]) == len(reports) + 3 * len(QUESTIONS)
    assert f"dave,{items[1]['item_id']},{missing},,unplayable" in csv_lines
    code, stdout, stderr = run_main(main, "aggregate", "--study", study, "--answers", path, "--out", tmp_path / "agg",
                                    "--bootstrap", "50", capsys=capsys)
    assert code == 0, stderr
    assert pd.read_csv(tmp_path / "agg" / "exclusions.csv")["raters_removed"].sum() == 0
    assert set(pd.read_csv(tmp_path / "agg" / "unplayable.csv")["blind_id"]) == {"reference", missing}
    assert pd.read_csv(tmp_path / "agg" / "table.csv")["n_ratings"].sum() == 3 * len(QUESTIONS)


def test_back_returns_to_earlier_sets_with_their_ratings(small_study, tmp_path):
    """Back shows an earlier set as the rater left it, and a changed rating is what the answers keep."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page, errors = open_form(browser, f"file://{(small_study / 'rater' / 'index.html').resolve()}?rater=erin")
        assert page.is_hidden("#back-btn")
        first, prompt = shown_videos(page), page.inner_text("#prompt")
        rate(page, dict.fromkeys(first, 4))
        page.click("#next-btn")
        assert page.inner_text("#progress") == "Set 2 of 3" and page.is_visible("#back-btn")
        page.click("#back-btn")
        # the earlier set as it was left: its ratings, open at once (watched videos need no second viewing)
        assert page.inner_text("#progress") == "Set 1 of 3" and page.inner_text("#prompt") == prompt
        assert page.eval_on_selector_all("#candidates input", "xs => xs.every(x => !x.disabled)")
        checked = page.eval_on_selector_all("#candidates input:checked", "xs => xs.map(x => x.value)")
        assert checked == ["4"] * len(first) * len(QUESTIONS)
        assert page.is_enabled("#next-btn")
        page.check(f'input[name="{first[0]}__motion"][value="1"]')
        while page.is_visible("#item"):
            page.click("#next-btn")
            if page.is_visible("#item"):
                rate(page, dict.fromkeys(shown_videos(page), 4))
        answers = json.loads(download_json(page, tmp_path).read_text())["answers"]
        assert not errors, errors
        browser.close()
    assert len(answers) == 3 * 2 * len(QUESTIONS)
    assert [a["score"] for a in answers if a["blind_id"] == first[0] and a["question"] == "motion"] == [1]


def test_a_video_that_does_not_load_may_be_skipped_until_it_plays(small_study):
    """Served from a host that holds back every video to rate: after 20 s without data each offers its skip
    control, which goes away once the video arrives and plays."""
    from playwright.sync_api import sync_playwright

    rater = small_study / "rater"
    held = []

    def serve(route):
        path = route.request.url.removeprefix("http://study.test/").split("?")[0]
        if path.startswith("media/v"):
            held.append((route, rater / path))
        else:
            route.fulfill(path=rater / path)

    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context()
        context.route("http://study.test/**", serve)
        page = context.new_page()
        page.clock.install()
        page.goto("http://study.test/index.html?rater=fay")
        page.click("#start-btn")
        blinds = shown_videos(page)
        page.clock.run_for(19_000)
        assert page.eval_on_selector_all("#candidates .hint", "hs => hs.map(h => h.textContent)") == [
            "Watch to the end to rate."] * len(blinds)
        page.clock.run_for(1_000)
        assert page.eval_on_selector_all("#candidates .hint", "hs => hs.map(h => h.textContent)") == [
            "This video is not loading."] * len(blinds)
        assert page.eval_on_selector_all("#candidates button.skip", "bs => bs.every(b => !b.hidden)")
        for route, path in held:
            route.fulfill(path=path)
        rate(page, dict.fromkeys(blinds, 3))
        assert page.eval_on_selector_all("#candidates button.skip", "bs => bs.every(b => b.hidden)")
        assert page.is_enabled("#next-btn")
        browser.close()
