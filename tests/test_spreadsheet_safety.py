"""Every CSV the project writes opens in a spreadsheet as text, never as a formula; answers files that are not
UTF-8 or not a known export are refused in one line (issue 42)."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from eval.spreadsheet import frame_to_csv, neutralise
from human_study.__main__ import main as study_main
from tests.fixture_runs import make_run

EVIL = '=HYPERLINK("http://example.org","click")'


@pytest.mark.parametrize("cell, want", [
    (EVIL, "'" + EVIL), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("-0.5", "-0.5"), ("+3e-2", "+3e-2"), ("a=b", "a=b"), (-0.5, -0.5), (None, None)])
def test_formula_looking_text_is_neutralised_and_numbers_are_not(cell, want):
    assert neutralise(cell) == want


def test_frame_to_csv_leaves_numeric_columns_alone():
    df = pd.DataFrame({"who": [EVIL, "ok"], "value": [-0.25, 1.5]})
    rows = list(csv.reader(frame_to_csv(df, index=False).splitlines()))
    assert rows == [["who", "value"], ["'" + EVIL, "-0.25"], ["ok", "1.5"]]
    rows = list(csv.reader(frame_to_csv(df.set_index("who")).splitlines()))  # row labels too (the leaderboard)
    assert rows == [["who", "value"], ["'" + EVIL, "-0.25"], ["ok", "1.5"]]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("s")
    run = make_run(root / "r", ("vmc", "tav"))
    code, _, _ = run_main(study_main, "export", "--run", run, "--methods", "vmc,tav", "--out", root / "study",
                          "--checks", "0", "--format", "all", "--media-url", "https://example.org/m")
    assert code in (0, None)
    return root / "study", json.loads((root / "study" / "rater" / "study.json").read_text())


def test_a_formula_rater_id_is_text_in_every_csv(study, tmp_path):
    folder, public = study
    rng = np.random.default_rng(0)
    rows = [{"rater_id": rater, "item_id": i["item_id"], "blind_id": c["blind_id"], "question": q["id"],
             "score": int(rng.integers(1, 6))}
            for rater in (EVIL, "-r2", "@r3") for i in public["items"] for c in i["candidates"]
            for q in public["questions"]]
    pd.DataFrame(rows).to_csv(tmp_path / "answers.csv", index=False)
    code, _, _ = run_main(study_main, "aggregate", "--study", folder, "--answers", tmp_path / "answers.csv",
                          "--out", tmp_path / "out", "--bootstrap", "50")
    assert code in (0, None)
    for name in ("answers.csv", "exclusions.csv", "table.csv", "tests.csv", "differences.csv", "agreement.csv"):
        with open(tmp_path / "out" / name, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), (name, row)
                assert not any(cell.startswith("-") and not cell[1:2].isdigit() for cell in row), (name, row)
    raters = set(pd.read_csv(tmp_path / "out" / "answers.csv")["rater_id"])
    assert raters == {"'" + EVIL, "'-r2", "'@r3"}
    with open(folder / "rater" / "mturk" / "input.csv", newline="", encoding="utf-8") as f:
        assert not any(cell.startswith(("=", "+", "-", "@")) for row in csv.reader(f) for cell in row)


@pytest.mark.parametrize("name, content, message", [
    ("latin1.csv", "rater_id,item_id,blind_id,question,score\nJos\xe9,item001,v1,motion,3\n".encode("latin-1"),
     "latin1.csv: not UTF-8 text"),
    ("latin1.json", '{"rater_id": "Jos\xe9"}'.encode("latin-1"), "latin1.json: not UTF-8 text"),
    ("list.json", b"[1, 2, 3]", "list.json: unrecognised JSON"),
    ("empty.json", b"[]", "empty.json: unrecognised JSON"),
])
def test_unreadable_answers_are_refused_in_one_line(study, tmp_path, capsys, name, content, message):
    folder, _ = study
    (tmp_path / name).write_bytes(content)
    code, _, err = run_main(study_main, "aggregate", "--study", folder, "--answers", tmp_path / name,
                            "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
