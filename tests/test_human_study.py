"""Human study: export → (simulated or browser-filled) answers in each platform's format → aggregate."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli, run_main
from tests.fixture_runs import make_run

METHODS = ["vmc", "tav", "t2v"]
TRUE = {"vmc": 4.2, "tav": 3.0, "t2v": 2.0}
RATER_SD, NOISE_SD = 0.3, 0.6
XSS = "<script>window.__xss = 1</script> a red circle is moving right"
CASES = {"right": [XSS, "a blue star is moving right"], "fall": ["a green square is falling", "a white circle is falling"],
         "up": ["a yellow star is rising", "an orange circle is rising"]}
QUESTIONS = ["motion", "appearance", "text", "temporal"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("human")
    run = make_run(root, METHODS, cases=CASES)
    out = root / "study"
    run_cli("-m", "human_study", "export", "--run", run, "--methods", ",".join(METHODS), "--format", "all",
            "--out", out, "--media-url", "https://example.org/s1/media", "--checks", "2")
    public = json.loads((out / "rater" / "study.json").read_text())
    key = json.loads((out / "key.json").read_text())
    return out, public, key


def simulate(public, key, n_raters, seed=1):
    """Raters with a personal bias and per-rating noise around each method's true mean; attention checks passed."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_raters):
        bias = rng.normal(0, RATER_SD)
        for item in public["items"]:
            for c in item["candidates"]:
                entry = key["blind"][c["blind_id"]]
                for q in QUESTIONS:
                    if entry["kind"] == "method":
                        score = int(np.clip(np.rint(TRUE[entry["method"]] + bias + rng.normal(0, NOISE_SD)), 1, 5))
                    elif entry["kind"] == "reference_check":
                        score = 5 if q == "motion" else int(rng.integers(1, 6))
                    else:
                        score = 1 if q == "text" else int(rng.integers(1, 6))
                    rows.append({"rater_id": f"r{r:02d}", "item_id": item["item_id"], "blind_id": c["blind_id"],
                                 "question": q, "score": score})
    return pd.DataFrame(rows)


def expected_mean(mu, n=400_000):
    """The population mean the simulated raters' scores estimate (rounding and clipping included)."""
    rng = np.random.default_rng(123)
    return float(np.clip(np.rint(mu + rng.normal(0, RATER_SD, n) + rng.normal(0, NOISE_SD, n)), 1, 5).mean())


def write_long(df, path):
    df.to_csv(path, index=False)
    return [path]


def write_html_json(df, study_id, folder):
    paths = []
    for rater, g in df.groupby("rater_id"):
        path = folder / f"answers-{rater}.json"
        path.write_text(json.dumps({"format": "likert-study/answers", "study_id": study_id, "rater_id": rater,
                                    "complete": True, "answers": g.drop(columns="rater_id").to_dict("records")}))
        paths.append(path)
    return paths


def write_mturk(df, rater_dir, folder):
    """Batch results as MTurk writes them: Input.* echoes the input CSV, one Answer.* column per field; the
    second half of the raters in a second file in the `Answer.taskAnswers` JSON form."""
    with open(rater_dir / "mturk" / "input.csv", newline="") as f:
        inputs = list(csv.DictReader(f))
    raters = sorted(df["rater_id"].unique())
    files = []
    for part, chosen in enumerate((raters[: len(raters) // 2], raters[len(raters) // 2:])):
        rows = []
        for rater in chosen:
            mine = df[df["rater_id"] == rater]
            for h, hit in enumerate(inputs):
                answers = {f"{b}__{q}": str(s) for b, q, s in
                           mine[mine["item_id"] == hit["item_id"]][["blind_id", "question", "score"]].values}
                row = {"HITId": f"HIT{h}", "AssignmentId": f"A{rater}{h}", "WorkerId": rater,
                       "AssignmentStatus": "Submitted", **{f"Input.{k}": v for k, v in hit.items()}}
                if part == 0:
                    row.update({f"Answer.{k}": v for k, v in answers.items()})
                else:
                    row["Answer.taskAnswers"] = json.dumps([{**answers, "item_id": hit["item_id"]}])
                rows.append(row)
        path = folder / f"Batch_{part}_batch_results.csv"
        pd.DataFrame(rows).fillna("").to_csv(path, index=False)
        files.append(path)
    return files


def write_labelstudio(df, rater_dir, folder):
    tasks = json.loads((rater_dir / "labelstudio" / "tasks.json").read_text())
    users = {r: i + 1 for i, r in enumerate(sorted(df["rater_id"].unique()))}
    index = df.set_index(["rater_id", "blind_id", "question"])["score"]
    export = []
    for t, task in enumerate(tasks):
        annotations = [{"id": 1000 * t + u, "completed_by": {"id": u, "email": f"{r}@lab.example"},
                        "was_cancelled": False,
                        "result": [{"from_name": q, "to_name": "video", "type": "rating",
                                    "value": {"rating": int(index[(r, task["data"]["blind_id"], q)])}}
                                   for q in QUESTIONS]} for r, u in users.items()]
        export.append({"id": t + 1, "data": task["data"], "annotations": annotations})
    path = folder / "project-1-export.json"
    path.write_text(json.dumps(export))
    return [path]


def write_qualtrics(df, rater_dir, public, folder):
    """Qualtrics' CSV export: export tags, question texts, ImportIds; the row of each matrix row read from the
    .qsf's own labels ("Video B: Text alignment")."""
    qsf = json.loads((rater_dir / "qualtrics" / "survey.qsf").read_text())
    labels = {q["label"]: q["id"] for q in public["questions"]}
    items = {i["item_id"]: i for i in public["items"]}
    columns = []  # (export name, import id, blind, question)
    for el in qsf["SurveyElements"]:
        if el["Element"] != "SQ":
            continue
        pl = el["Payload"]
        item = items[pl["DataExportTag"]]
        for choice, display in pl["Choices"].items():
            letter, label = re.match(r"Video (\w): (.+)", display["Display"]).groups()
            blind = item["candidates"][ord(letter) - 65]["blind_id"]
            columns.append((f"{pl['DataExportTag']}_{choice}", f"{pl['QuestionID']}_{choice}", blind, labels[label]))
    meta = ["StartDate", "Finished", "ResponseId", "PROLIFIC_PID"]
    index = df.set_index(["rater_id", "blind_id", "question"])["score"]
    path = folder / "qualtrics.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(meta + [c[0] for c in columns])
        w.writerow(meta + [f"text of {c[0]}" for c in columns])
        w.writerow([json.dumps({"ImportId": m}) for m in meta] + [json.dumps({"ImportId": c[1]}) for c in columns])
        for i, rater in enumerate(sorted(df["rater_id"].unique())):
            w.writerow(["2026-11-22 10:00:00", "1", f"R_{i:04d}", rater] +
                       [str(index[(rater, c[2], c[3])]) for c in columns])
    return [path]


def aggregate(study_dir, answers, out, *extra, check=True):
    return run_cli("-m", "human_study", "aggregate", "--study", study_dir, "--answers", *answers, "--out", out,
                   *extra, check=check)


def test_export_layout_and_platform_files(study):
    out, public, key = study
    rater = out / "rater"
    assert not (rater / "key.json").exists() and (out / "key.json").exists()
    assert len(public["items"]) == 6
    kinds = [b["kind"] for b in key["blind"].values()]
    assert kinds.count("reference_check") == 2 and kinds.count("mismatch_check") == 2
    for item in public["items"]:
        for c in item["candidates"]:
            assert (rater / c["video"]).is_file() and c["blind_id"] in key["blind"]
    # MTurk: every ${placeholder} of the template is a column of the input CSV
    hit = (rater / "mturk" / "hit.html").read_text()
    header = next(csv.reader(open(rater / "mturk" / "input.csv")))
    assert "<crowd-form" in hit and set(re.findall(r"\$\{(\w+)\}", hit)) == set(header)
    assert all(row[2].startswith("https://example.org/s1/media/") for row in csv.reader(open(rater / "mturk" / "input.csv"))
               if row[0] != "item_id")
    # Label Studio: a Rating per question on the rated <Video>
    view = ET.parse(rater / "labelstudio" / "config.xml").getroot()
    videos = {v.get("name") for v in view.iter("Video")}
    assert {r.get("name") for r in view.iter("Rating")} == set(QUESTIONS)
    assert all(r.get("toName") in videos and r.get("maxRating") == "5" for r in view.iter("Rating"))
    tasks = json.loads((rater / "labelstudio" / "tasks.json").read_text())
    assert len(tasks) == sum(len(i["candidates"]) for i in public["items"])
    assert all({"item_id", "blind_id", "prompt", "reference", "video"} <= set(t["data"]) for t in tasks)
    # Qualtrics: one Likert matrix per item, a row per video × question, columns 1..5
    qsf = json.loads((rater / "qualtrics" / "survey.qsf").read_text())
    sq = [e["Payload"] for e in qsf["SurveyElements"] if e["Element"] == "SQ"]
    assert len(sq) == len(public["items"])
    for pl, item in zip(sq, public["items"]):
        assert pl["QuestionType"] == "Matrix" and pl["Selector"] == "Likert" and pl["SubSelector"] == "SingleAnswer"
        assert len(pl["Choices"]) == 4 * len(item["candidates"]) and list(pl["Answers"]) == ["1", "2", "3", "4", "5"]


def test_prompts_are_escaped_everywhere(study):
    out, public, _ = study
    rater = out / "rater"
    page = (rater / "index.html").read_text()
    assert "<script>window.__xss" not in page and "</script> a red" not in page
    assert "<script>" not in (rater / "mturk" / "input.csv").read_text()
    qsf = (rater / "qualtrics" / "survey.qsf").read_text()
    assert "<script>window" not in qsf and "&lt;script&gt;window.__xss" in qsf
    assert any(i["prompt"] == XSS for i in public["items"])  # the data itself is unchanged


def test_blinding_nothing_raters_receive_names_a_method(study):
    out, _, key = study
    # whole words only: "datavisibility" contains "tav" but names nothing
    forbidden = re.compile(rb"(?<![a-z0-9])(" + b"|".join(m.encode() for m in METHODS) + rb")(?![a-z0-9])|"
                           rb"reference_check|mismatch_check|" + re.escape(key["run"].encode()), re.IGNORECASE)
    files = [p for p in (out / "rater").rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        for text in (str(path.relative_to(out)).encode(), path.read_bytes()):
            match = forbidden.search(text)
            assert match is None, f"{match.group(0)!r} in {path}"


@pytest.fixture(scope="module")
def simulated(study):
    out, public, key = study
    return simulate(public, key, n_raters=24)


def test_simulated_raters_every_format_round_trips_to_the_same_table(study, simulated, tmp_path):
    out, public, key = study
    writers = {"long": lambda d: write_long(simulated, d / "long.csv"),
               "html": lambda d: write_html_json(simulated, public["study_id"], d),
               "mturk": lambda d: write_mturk(simulated, out / "rater", d),
               "labelstudio": lambda d: write_labelstudio(simulated, out / "rater", d),
               "qualtrics": lambda d: write_qualtrics(simulated, out / "rater", public, d)}
    tables = {}
    for fmt, write in writers.items():
        folder = tmp_path / fmt
        folder.mkdir()
        result = aggregate(out, write(folder), tmp_path / f"out-{fmt}")
        assert "raters kept" not in result.stderr
        tables[fmt] = pd.read_csv(tmp_path / f"out-{fmt}" / "table.csv")
        exclusions = pd.read_csv(tmp_path / f"out-{fmt}" / "exclusions.csv")
        assert exclusions["raters_removed"].sum() == 0 and exclusions["raters_left"].iloc[-1] == 24, fmt
    for fmt, table in tables.items():
        pd.testing.assert_frame_equal(table, tables["long"], obj=fmt)

    table = tables["long"]
    for q in QUESTIONS:
        rows = table[table["question"] == q].set_index("method")
        assert rows.loc["vmc", "mean"] > rows.loc["tav", "mean"] > rows.loc["t2v", "mean"]
        for m in METHODS:
            truth = expected_mean(TRUE[m])
            assert rows.loc[m, "ci95_low"] <= truth <= rows.loc[m, "ci95_high"], (q, m, truth)
            assert rows.loc[m, "n_raters"] == 24 and rows.loc[m, "n_ratings"] == 24 * 6
    # an independent computation of the means: plain pandas over the simulated method answers
    methods = simulated.assign(method=[key["blind"][b]["method"] if key["blind"][b]["kind"] == "method" else None
                                       for b in simulated["blind_id"]]).dropna(subset=["method"])
    direct = methods.groupby(["method", "question"])["score"].mean()
    for _, r in table.iterrows():
        assert r["mean"] == pytest.approx(direct[(r["method"], r["question"])])

    diffs = pd.read_csv(tmp_path / "out-long" / "differences.csv")  # against the first method, vmc
    assert len(diffs) == 2 * len(QUESTIONS) and (diffs["against"] == "vmc").all()
    for _, d in diffs.iterrows():
        truth = expected_mean(TRUE["vmc"]) - expected_mean(TRUE[d["method"]])
        assert d["excludes_zero"] and d["ci95_low"] <= truth <= d["ci95_high"], (d["question"], d["method"])
    tests = pd.read_csv(tmp_path / "out-long" / "tests.csv")
    assert (tests[tests["test"] == "friedman"]["p"] < 1e-6).all()
    wil = tests[tests["test"] == "wilcoxon"]
    assert set(wil["method"]) == {"tav", "t2v"} and (wil["p_holm"] < 1e-3).all() and (wil["p_holm"] >= wil["p"]).all()
    alpha = pd.read_csv(tmp_path / "out-long" / "agreement.csv")
    assert (alpha["alpha_ordinal"] > 0.4).all()
    md = (tmp_path / "out-long" / "table.md").read_text()
    tex = (tmp_path / "out-long" / "table.tex").read_text()
    assert "| Method | Motion preservation |" in md and "**" in md
    assert r"\textbf{" in tex and r"\begin{tabular}" in tex


def test_mean_ci_resamples_raters_and_prompts():
    """Additive scores (rater bias + prompt effect, every rater rating every prompt's two seeds) make each
    two-way replicate's mean exactly mean_w(rater bias) + mean_w(prompt effect), whose spread has a closed form:
    sqrt(pvar(bias)/R + pvar(effect)/U). A rater-only bootstrap would give sqrt(pvar(bias)/R), a third of it."""
    from human_study.stats import method_means

    rng = np.random.default_rng(7)
    n_raters, n_prompts = 40, 25
    bias, effect = rng.normal(0, 0.5, n_raters), rng.normal(0, 1.0, n_prompts)
    df = pd.DataFrame([{"rater_id": f"r{r}", "case": f"c{u % 5}", "prompt": f"p{u}", "seed": seed,
                        "method": "vmc", "question": "motion", "score": 3 + bias[r] + effect[u]}
                       for r in range(n_raters) for u in range(n_prompts) for seed in (0, 1)])
    row = method_means(df, ["vmc"], ["motion"], n_boot=4000, seed=3).iloc[0]
    sd = np.sqrt(bias.var() / n_raters + effect.var() / n_prompts)
    assert row["mean"] == pytest.approx(3 + bias.mean() + effect.mean())
    assert (row["ci95_high"] - row["ci95_low"]) / (2 * 1.96) == pytest.approx(sd, rel=0.1)
    assert row["ci95_low"] < row["mean"] < row["ci95_high"]
    assert (row["n_ratings"], row["n_raters"], row["n_prompts"]) == (n_raters * n_prompts * 2, n_raters, n_prompts)


def test_differences_are_paired_over_raters_and_prompts():
    """score = method level + rater bias + prompt effect + a prompt-specific gain of vmc: in every replicate the
    biases and effects cancel from vmc − tav, which is exactly level gap + mean_w(gain), spread
    sqrt(pvar(gain)/U); the unpaired means' intervals are far wider."""
    from human_study.stats import method_differences, method_means

    rng = np.random.default_rng(11)
    n_raters, n_prompts = 30, 20
    bias, effect, gain = rng.normal(0, 1, n_raters), rng.normal(0, 1, n_prompts), rng.normal(0, 0.4, n_prompts)
    level = {"vmc": 3.5, "tav": 3.0}
    df = pd.DataFrame([{"rater_id": f"r{r}", "case": "c", "prompt": f"p{u}", "method": m, "question": "motion",
                        "score": level[m] + bias[r] + effect[u] + (gain[u] if m == "vmc" else 0)}
                       for r in range(n_raters) for u in range(n_prompts) for m in level])
    row = method_differences(df, ["vmc", "tav"], ["motion"], "vmc", n_boot=4000, seed=2).iloc[0]
    assert (row["method"], row["against"]) == ("tav", "vmc")
    assert row["mean_diff"] == pytest.approx(0.5 + gain.mean())
    assert (row["ci95_high"] - row["ci95_low"]) / (2 * 1.96) == pytest.approx(np.sqrt(gain.var() / n_prompts),
                                                                             rel=0.1)
    assert row["excludes_zero"] == (row["ci95_low"] > 0)
    means = method_means(df, ["vmc", "tav"], ["motion"], n_boot=4000, seed=2).set_index("method")
    assert means.loc["vmc", "ci95_high"] - means.loc["vmc", "ci95_low"] > 3 * (row["ci95_high"] - row["ci95_low"])


def test_krippendorff_alpha_matches_published_examples():
    """Krippendorff (2011), 'Computing Krippendorff's Alpha-Reliability': the 4 observers × 12 units example
    (nominal .743, ordinal .815, interval .849) and the 2 × 10 binary example (nominal .095)."""
    from human_study.stats import krippendorff_alpha

    n = np.nan
    data = pd.DataFrame([[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                         [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]])
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.849, abs=5e-4)
    binary = pd.DataFrame([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]])
    assert krippendorff_alpha(binary, "nominal", domain=(0, 1)) == pytest.approx(0.095, abs=5e-4)


def test_exclusion_rules_count_raters(study, simulated, tmp_path):
    out, public, key = study
    good = simulated[simulated["rater_id"] < "r14"]  # > 13 raters: Wilcoxon with ties is asymptotic (fast)
    incomplete = good[(good["rater_id"] == "r00") & (good["item_id"] != "item003")].assign(rater_id="incomplete")
    failed = good[good["rater_id"] == "r01"].assign(rater_id="inattentive")
    ref_checks = [b for b, e in key["blind"].items() if e["kind"] == "reference_check"]
    failed.loc[failed["blind_id"].isin(ref_checks) & (failed["question"] == "motion"), "score"] = 1
    liner = good[good["rater_id"] == "r02"].assign(rater_id="liner", score=4)
    answers = pd.concat([good, incomplete, failed, liner])
    paths = write_long(answers, tmp_path / "answers.csv")
    aggregate(out, paths, tmp_path / "a")
    ex = pd.read_csv(tmp_path / "a" / "exclusions.csv").set_index("rule")
    assert ex.loc["all", "raters_left"] == 17
    assert (ex.loc["incomplete", "raters_removed"], ex.loc["incomplete", "removed"]) == (1, "incomplete")
    # the straight-liner (all 4s) also rates a mismatched prompt's text 4, so the attention rule removes it first
    assert ex.loc["attention", "raters_removed"] == 2 and ex.loc["attention", "removed"] == "inattentive liner"
    assert (ex.loc["straightlining", "raters_flagged"], ex.loc["straightlining", "raters_removed"]) == (1, 0)
    assert ex.loc["straightlining", "raters_left"] == 14
    aggregate(out, paths, tmp_path / "b", "--max-failed-checks", "9")
    ex = pd.read_csv(tmp_path / "b" / "exclusions.csv").set_index("rule")
    assert ex.loc["attention", "raters_removed"] == 0 and ex.loc["straightlining", "removed"] == "liner"
    answers_out = pd.read_csv(tmp_path / "b" / "answers.csv")
    assert set(answers_out[~answers_out["kept"]]["rater_id"]) == {"incomplete", "liner"}


def test_bad_answers_are_reported_by_file_and_line_and_never_counted(study, simulated, tmp_path):
    out, public, _ = study
    good = simulated[simulated["rater_id"] < "r03"]
    path = tmp_path / "answers.csv"
    good.to_csv(path, index=False)
    item = public["items"][0]
    blind = item["candidates"][0]["blind_id"]
    with open(path, "a") as f:
        f.write(f"r00,{item['item_id']},{blind},motion\n")          # malformed: 4 fields
        f.write(f"r09,{item['item_id']},{blind},motion,7\n")        # out of range
        f.write(f"r09,{item['item_id']},vdeadbeef00,motion,3\n")    # unknown video id
        f.write(f"r00,{item['item_id']},{blind},motion,2\n")        # duplicate of an earlier answer
        f.write(f"r09,{item['item_id']},{blind},speed,3\n")         # unknown question
        f.write(f"r09,{item['item_id']},{blind},text,good\n")       # malformed score
    first = len(good) + 2
    result = aggregate(out, [path], tmp_path / "strict", check=False)
    assert result.returncode == 2 and not (tmp_path / "strict").exists()
    for offset, message in enumerate(["malformed row", "score 7 out of range", "unknown video id 'vdeadbeef00'",
                                      "duplicate answer of rater 'r00'", "unknown question 'speed'",
                                      "malformed score 'good'"]):
        assert f"{path}: line {first + offset}: {message}" in result.stderr
    aggregate(out, [path], tmp_path / "lenient", "--keep-going")
    problems = pd.read_csv(tmp_path / "lenient" / "problems.csv")
    assert len(problems) == 6
    answers = pd.read_csv(tmp_path / "lenient" / "answers.csv")
    assert len(answers) == len(good) and "r09" not in set(answers["rater_id"])


def test_unknown_format_and_wrong_study_fail_in_one_line(study, tmp_path):
    out, _, _ = study
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    result = aggregate(out, [bad], tmp_path / "o", check=False)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "unrecognised answers CSV" in result.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "likert-study/answers", "study_id": "study-0", "rater_id": "a",
                                 "complete": True, "answers": []}))
    result = aggregate(out, [other], tmp_path / "o", check=False)
    assert result.returncode == 2 and "answers to study 'study-0'" in result.stderr


def test_export_refuses_unknown_method_and_existing_folder(study, tmp_path):
    out, _, key = study
    result = run_cli("-m", "human_study", "export", "--run", key["run"], "--methods", "vmc,md", "--out",
                     tmp_path / "s", check=False)
    assert result.returncode == 2 and "has no videos of method 'md'" in result.stderr
    result = run_cli("-m", "human_study", "export", "--run", key["run"], "--methods", "vmc,tav", "--out", out,
                     check=False)
    assert result.returncode == 2 and "already exists" in result.stderr


def test_unplayable_reports_excuse_the_ratings_they_prevented_and_are_listed(study, simulated, tmp_path, capsys):
    """The HTML form reports a video it could not play as a row with no question and the score "unplayable" (blind
    id "reference" for the reference clip, which skips its whole item); in its JSON and its CSV alike that is no
    rating, no problem, and no reason to call the session incomplete."""
    from human_study.__main__ import main

    out, public, key = study
    first, second = public["items"][:2]
    broken = first["candidates"][0]["blind_id"]
    reports = [{"item_id": first["item_id"], "blind_id": broken, "question": "", "score": "unplayable"},
               {"item_id": second["item_id"], "blind_id": "reference", "question": "", "score": "unplayable"}]
    raters = simulated[simulated["rater_id"] < "r03"]
    prevented = (raters["blind_id"] == broken) | (raters["item_id"] == second["item_id"])
    skipping = raters[~prevented & (raters["rater_id"] < "r02")]
    reported = pd.concat([skipping, pd.DataFrame([{**r, "rater_id": f"r0{k}"} for r in reports for k in (0, 1)])])
    json_path = write_html_json(reported[reported["rater_id"] == "r00"], public["study_id"], tmp_path)[0]
    csv_path = write_long(pd.concat([reported[reported["rater_id"] == "r01"], raters[raters["rater_id"] == "r02"]]),
                          tmp_path / "form.csv")[0]
    code, stdout, stderr = run_main(main, "aggregate", "--study", out, "--answers", json_path, csv_path, "--out",
                                    tmp_path / "agg", "--bootstrap", "50", capsys=capsys)
    assert code == 0, stderr
    assert "2 rater(s) skipped 4 video(s) they could not play" in stdout
    assert f"{out / 'rater' / second['reference']} ({second['item_id']}): 2 rater(s)" in stdout
    exclusions = pd.read_csv(tmp_path / "agg" / "exclusions.csv").set_index("rule")
    assert exclusions["raters_removed"].sum() == 0 and exclusions.loc["straightlining", "raters_left"] == 3
    listed = pd.read_csv(tmp_path / "agg" / "unplayable.csv", keep_default_na=False)
    assert sorted(listed["rater_id"]) == ["r00", "r00", "r01", "r01"]
    assert set(zip(listed["blind_id"], listed["file"], listed["kind"])) == {
        ("reference", second["reference"], "reference"), (broken, f"media/{broken}.mp4", key["blind"][broken]["kind"])}
    answers = pd.read_csv(tmp_path / "agg" / "answers.csv")
    assert len(answers) == len(skipping) + (raters["rater_id"] == "r02").sum()
    # a report is about one whole video of the item it names, once per rater
    bad = tmp_path / "bad.csv"
    write_long(pd.DataFrame([{**reports[0], "rater_id": "r00", "question": "motion"},
                             {**reports[1], "rater_id": "r00", "item_id": "item999"},
                             {**reports[0], "rater_id": "r00", "blind_id": "vdeadbeef00"},
                             {**reports[0], "rater_id": "r01"}, {**reports[0], "rater_id": "r01"}]), bad)
    code, _, stderr = run_main(main, "aggregate", "--study", out, "--answers", bad, "--out", tmp_path / "bad",
                               capsys=capsys)
    assert code == 2
    for line, message in [(2, "an 'unplayable' report is about a whole video, not question 'motion'"),
                          (3, "unknown item id 'item999'"), (4, "unknown video id 'vdeadbeef00'"),
                          (6, f"duplicate report of rater 'r01' that {broken} is unplayable")]:
        assert f"{bad}: line {line}: {message}" in stderr


def test_aggregate_prints_the_exclusion_counts_before_saying_nothing_is_left(study, simulated, tmp_path, capsys):
    """When every rater is excluded, the counts per rule are what tells the researcher why."""
    from human_study.__main__ import main

    out, _, _ = study
    unfinished = simulated[(simulated["rater_id"] == "r00") & (simulated["item_id"] != "item001")]
    code, stdout, stderr = run_main(main, "aggregate", "--study", out, "--answers",
                                    *write_long(unfinished, tmp_path / "a.csv"), "--out", tmp_path / "o",
                                    capsys=capsys)
    assert code == 2 and stderr.strip().count("\n") == 0 and "no answers left to aggregate" in stderr
    counts = [line.split() for line in stdout.splitlines()]
    assert counts[0] == ["rule", "raters_flagged", "raters_removed", "raters_left"]
    assert counts[1:] == [["all", "0", "0", "1"], ["incomplete", "1", "1", "0"], ["attention", "0", "0", "0"],
                          ["straightlining", "0", "0", "0"]]
    assert not (tmp_path / "o").exists()
