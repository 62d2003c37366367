"""Records and run folders: every form of record still on disk reads into a Record and writes back as the same
JSON; a run folder reads and appends its records as results.jsonl promises, and opens after being moved."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import mini_with_tiny_clip, moving_square, run_main
from eval.errors import UserError
from eval.record import Record, Timing
from eval.rundir import RunFolder
from eval.video import Video, write_video
from tests.fixture_runs import make_run
from test_reliability import opens

SCORES = {"metrics": {"text_alignment": 0.25, "temporal_consistency": None},
          "undefined": {"temporal_consistency": "one frame"},
          "spec_ids": {"text_alignment": "clip-1", "temporal_consistency": "clip-1"},
          "details": {"text_cos_per_frame": [0.25]}}
FORMS = {
    "eval.run": {"key": "vmc|right|a dog|0", "method": "vmc", "case": "right", "prompt": "a dog", "seed": 0,
                 "video": "videos/vmc/right/a-dog__s0.mp4", "num_frames": 8, "fps": 8.0, "size": [40, 64], **SCORES,
                 "timing": {"generate_s": 1.5, "score_s": 0.25, "adapt_s": 12.0},
                 "protocol": {"trained_parameters": 1000, "train_s": 12.0, "note": "cached"},
                 "provenance": {"mode": "command", "original": {"fps": 24.0}}},
    # before the fair-protocol facts, with a video made before generation times were kept beside videos
    "eval.run, older": {"key": "t2v|right|a dog|1", "method": "t2v", "case": "right", "prompt": "a dog", "seed": 1,
                        "video": "videos/t2v/right/a-dog__s1.mp4", "num_frames": 8, "fps": 8.0, "size": [40, 64],
                        **SCORES, "timing": {"generate_s": None, "score_s": 0.25, "adapt_s": 0.0}},
    "eval.score": {"key": "outputs|v0.mp4|a dog", "method": "outputs", "video": "v0.mp4", "prompt": "a dog",
                   "reference": "../clips/ref.mp4", "num_frames": 8, "fps": 8.0, "size": [40, 64], **SCORES},
    "eval.score, no reference": {"key": "outputs|v1.mp4|a dog", "method": "outputs", "video": "v1.mp4",
                                 "prompt": "a dog", "reference": None, "num_frames": 8, "fps": 8.0, "size": [40, 64],
                                 **SCORES},
    # an eval.score folder written before paths were stored relative to it: relative to where the command ran
    "eval.score, old folder": {"key": "outputs|v2.mp4|a dog", "method": "outputs", "video": "v2.mp4",
                               "prompt": "a dog", "reference": "clips/ref.mp4", "num_frames": 8, "fps": 8.0,
                               "size": [40, 64], **SCORES},
    "no timing": {"key": "m|c|p|0", "method": "m", "case": "c", "prompt": "p", "seed": 0, "video": "m/c/p.mp4",
                  **SCORES},
}


def _text(forms) -> str:
    """results.jsonl as the writers before Record wrote it."""
    return "".join(json.dumps(f, sort_keys=True, allow_nan=False) + "\n" for f in forms)


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_on_disk_round_trips_to_the_same_json(form):
    record = Record.from_json(json.loads(json.dumps(FORMS[form])))
    assert json.dumps(record.to_json(), sort_keys=True) == json.dumps(FORMS[form], sort_keys=True)


def test_rewriting_a_results_file_changes_no_byte(tmp_path):
    folder = RunFolder(tmp_path)
    folder.results.write_text(_text(FORMS.values()))
    folder.replace(folder.records())
    assert folder.results.read_text() == _text(FORMS.values())


def test_what_the_commands_write_reads_back_byte_for_byte(benchmark_dir, tiny_clip):
    """eval.run's and eval.score's results.jsonl, read into Records and written again, are the same bytes."""
    from eval.run import main as run_cli
    from eval.score import main as score_cli

    run = benchmark_dir / "run"
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    assert run_main(run_cli, "--methods", "reference", "--benchmark", bench, "--out", run)[0] == 0
    write_video(benchmark_dir / "outputs" / "v0.mp4", Video(moving_square(vx=2, vy=1), 8))
    (benchmark_dir / "prompts.csv").write_text("video,prompt,reference\nv0.mp4,a square,clips/right.mp4\n"
                                               "v0.mp4,a red square,\n")
    scores = benchmark_dir / "scores"
    cfg, ckpt = tiny_clip
    assert run_main(score_cli, "--videos", benchmark_dir / "outputs", "--prompts", benchmark_dir / "prompts.csv",
                    "--out", scores, "--workers", "0", "--clip-model", cfg, "--clip-pretrained", ckpt)[0] == 0
    for path, lines in ((run, 3), (scores, 2)):
        folder = RunFolder(path)
        text = folder.results.read_text()
        folder.replace(folder.records())
        assert folder.results.read_text() == text and len(text.splitlines()) == lines
    assert [r.reference is None for r in RunFolder(scores).records()] == [False, True]


def test_the_unit_a_record_counts_under():
    run, scored, bare = (Record.from_json(FORMS[f]) for f in ("eval.run", "eval.score", "eval.score, no reference"))
    assert run.unit("video") == ("right", "a dog", 0) and run.unit("case") == ("right",)
    assert scored.unit() == ("../clips/ref.mp4", "a dog") and bare.unit_case == "a dog"
    assert run.protocol_facts == {"protocol.trained_parameters": 1000, "protocol.train_s": 12.0,
                                  "protocol.generate_s": 1.5}
    assert Record.from_json(FORMS["eval.run, older"]).protocol_facts == {}


def test_records_are_read_and_appended_as_results_jsonl_promises(tmp_path):
    folder = RunFolder(tmp_path)
    first, second = (Record.from_json(FORMS[f]) for f in ("eval.run", "eval.run, older"))
    folder.results.write_text(_text([FORMS["eval.run"], FORMS["eval.run"]]) + '{"key": "torn')
    assert folder.records() == [first]  # a key twice counts once; a torn last line is skipped
    folder.append([second])  # cuts the torn line first
    assert folder.results.read_text() == _text([FORMS["eval.run"], FORMS["eval.run"], FORMS["eval.run, older"]])
    folder.append([replace(second, timing=replace(second.timing, score_s=0.5))], "results.rank1.jsonl")
    assert folder.records("results.rank1.jsonl")[0].timing == Timing(None, 0.5, 0.0)
    folder.results.write_text('{"key": "torn\n' + _text([FORMS["eval.run"]]))
    with pytest.raises(UserError, match="line 1 is not valid JSON"):
        folder.records()
    folder.results.write_text('{"method": "m"}\n')
    with pytest.raises(UserError, match=r"line 1 is not a record \(.*missing .*'key'"):
        folder.records()


@pytest.mark.parametrize("alone", [False, True], ids=["moved with its benchmark", "moved alone"])
def test_a_run_folder_moved_elsewhere_still_opens(tmp_path, alone):
    """In eval.compare, the dashboard's loaders and human_study export; moved alone, it finds the benchmark and
    reference clips where it was written."""
    made = make_run(tmp_path / "made", ("vmc", "t2v"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = Path(shutil.move(made if alone else made.parent, elsewhere / "moved"))
    opens(moved if alone else moved / "run", ["vmc", "t2v"], elsewhere)
