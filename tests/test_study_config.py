"""human_study export --config: the study's title, instructions, consent, duration, questions, scale and video
options reach the rater's form (headless Chromium); bad configs are one line; no config changes nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import CHROMIUM, run_main
from tests.fixture_runs import make_run

CONFIG = {"title": "Motion study", "instructions": "Watch each clip, then rate it.", "duration_minutes": 12,
          "consent": "Your ratings are stored without your name.", "loop": True,
          "questions": [{"id": "motion", "label": "Same motion", "text": "Does it move like the reference?"},
                        {"id": "look", "label": "Looks right", "text": "Does it look like the prompt?"}],
          "scale": {1: "no", 2: "partly", 3: "yes"}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cfg")
    return make_run(root, ("vmc", "tav"), cases={"right": ["a red star is moving right"],
                                                 "fall": ["a green square is falling"]})


def _export(run, out, *extra, capsys=None):
    from human_study.__main__ import main

    return run_main(main, "export", "--run", run, "--methods", "vmc,tav", "--out", out, *extra, capsys=capsys)


def test_bad_configs_are_one_line_and_write_nothing(run, tmp_path, capsys):
    for bad, message in (({"questions": [{"id": "motion", "label": "x"}]}, "question #1 must have exactly"),
                         ({"scale": {1: "a", 3: "c"}}, "consecutive integers"),
                         ({"loop": "yes"}, "'loop' must be true or false"),
                         ({"colour": "red"}, "unknown key(s) colour"),
                         ({"scale": {1: "no", 2: "yes"}}, "use --checks 0")):
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(bad))
        code, _, err = _export(run, tmp_path / "out", "--config", path, capsys=capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()


def test_no_config_keeps_the_vmc_questions(run, tmp_path, capsys):
    from human_study.questions import ANCHORS, QUESTIONS

    assert _export(run, tmp_path / "s", "--checks", "0", capsys=capsys)[0] == 0
    public = json.loads((tmp_path / "s" / "rater" / "study.json").read_text())
    assert public["questions"] == QUESTIONS and public["scores"] == {str(k): v for k, v in ANCHORS.items()}


@pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt install chromium)")
def test_the_config_changes_what_the_rater_reads(run, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    assert _export(run, tmp_path / "s", "--config", path, "--checks", "0", capsys=capsys)[0] == 0
    url = (tmp_path / "s" / "rater" / "index.html").as_uri() + "?rater=r1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required",
                                                                     "--mute-audio"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        assert page.inner_text("#title") == "Motion study" and page.title() == "Motion study"
        assert page.inner_text("#instructions") == "Watch each clip, then rate it."
        assert page.inner_text("#duration") == "Estimated duration: about 12 minutes."
        assert page.inner_text("#question-intro") == "Rate each video on two questions from 1 (no) to 3 (yes):"
        assert "Same motion" in page.inner_text("#question-help")
        assert page.inner_text("#consent-text") == "Your ratings are stored without your name."
        page.click("#start-btn")
        assert "consent" in page.inner_text("#start-hint") and page.is_hidden("#item")
        page.check("#consent-box")
        page.click("#start-btn")
        page.wait_for_selector("#candidates .card")
        assert page.eval_on_selector_all("video", "vs => vs.every(v => v.loop)")
        blinds = page.eval_on_selector_all("#candidates .card", "cards => cards.map(c => c.dataset.blind)")
        legends = page.eval_on_selector_all("#candidates legend", "ls => ls.map(l => l.textContent)")
        assert legends[:2] == ["Same motion", "Looks right"]
        assert page.eval_on_selector_all(f"input[name='{blinds[0]}__look']", "is => is.map(i => i.value)") == \
            ["1", "2", "3"]
        # looping videos never fire `ended`: going round once unlocks them all the same
        page.wait_for_function("bs => bs.every(b => [...document.querySelectorAll(`input[name^='${b}__']`)]"
                               ".every(i => !i.disabled))", arg=blinds, timeout=30_000)
        browser.close()
    assert not errors
