"""Videos of a user's own method next to the built-in ones (issues 42, 43): one file per distinct prompt, the one
protocol for videos made elsewhere, labels, declared facts, eval.run --check, and a human study of mixed sizes."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import moving_square, run_main
from eval.errors import UserError
from eval.naming import find_made_elsewhere, prompt_stem, video_name
from eval.rundir import RunFolder
from eval.run import main as run_main_cli
from eval.video import Video, read_video, write_video

SIX = ["一个红色的圆向右移动", "一只蓝色的鸟向右飞", "A red circle!", "a red circle",
       "a red circle moving to the right on a black background, seen from far away over a long time, then up",
       "a red circle moving to the right on a black background, seen from far away over a long time, then down"]


def _bench(tmp_path, tiny_clip, prompts, size=None):
    """One case, its reference 8 frames of 40×64 at 8 fps, scored with the tiny CLIP alone."""
    write_video(tmp_path / "ref.mp4", Video(moving_square(vx=3, vy=1), 8))
    cfg, ckpt = tiny_clip
    manifest = {"name": "six", "metrics": {"clip_model": str(cfg), "clip_pretrained": str(ckpt)},
                "defaults": {"frames": 8, **({"size": list(size)} if size else {})},
                "cases": [{"id": "c", "reference": "ref.mp4", "train_prompt": "a circle", "target_prompts": prompts}]}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    return tmp_path / "b.yaml"


def _run(*args, capsys=None):
    return run_main(run_main_cli, *map(str, args), "--metrics", "clip", "--device", "cpu", "--jobs", "1",
                    capsys=capsys)


def test_names_are_unique_readable_and_stable():
    stems = [prompt_stem(p) for p in SIX]
    assert len(set(stems)) == 6
    assert stems[3] == "a-red-circle" and stems[2].startswith("a-red-circle-") and stems[0].startswith("x-")
    assert prompt_stem("a yellow star is moving to the right") == "a-yellow-star-is-moving-to-the-right"  # shapes'
    assert video_name("A red circle!", 2) == f"{stems[2]}__s2.mp4"


def test_six_prompts_give_six_videos_and_six_records_and_the_folder_is_a_precomputed_one(tmp_path, tiny_clip):
    bench = _bench(tmp_path, tiny_clip, SIX)
    out = tmp_path / "run"
    assert _run("--methods", "reference", "--benchmark", bench, "--out", out)[0] == 0
    records = RunFolder(out).records()
    assert len(records) == 6 and len({r.video for r in records}) == 6
    assert len(list((out / "videos" / "reference" / "c").glob("*.mp4"))) == 6
    # eval.run's own layout is a precomputed folder, under a label of the user's, with declared facts
    pre = out / "videos" / "reference"
    (pre / "facts.yaml").write_text(yaml.safe_dump({"hardware": "1x test GPU", "trained_parameters": 1234,
                                                    "adapt_s": 10, "cases": {"c": {"generate_s": 2.5}}}))
    again = tmp_path / "again"
    assert _run("--methods", f"Ours=precomputed:{pre}", "--benchmark", bench,
                "--out", again)[0] == 0
    ours = RunFolder(again).records()
    assert [r.method for r in ours] == ["Ours"] * 6
    # each prompt read its own video (the scores differ by prompt; re-encoding costs a little)
    assert {r.prompt: r.metrics["text_alignment"] for r in ours} == \
        pytest.approx({r.prompt: r.metrics["text_alignment"] for r in records}, abs=0.005)
    r = ours[0]
    assert r.timing.generate_s is None  # reading a file is no generation
    assert r.protocol == {"declared_hardware": "1x test GPU", "declared_trained_parameters": 1234,
                          "declared_adapt_s": 10.0, "declared_generate_s": r.protocol["declared_generate_s"]}
    assert r.provenance["resampled"] is None and r.provenance["original"]["size"] == [40, 64]
    summary = pd.read_csv(again / "summary.csv")
    facts = summary[summary.method == "Ours"].set_index("metric")["mean"]
    assert facts["protocol.declared_trained_parameters"] == 1234 and facts["protocol.declared_adapt_s"] == 10
    # each video's own .json (eval.run writes its measured generation time there) is its declared time
    measured = {r.prompt: r.timing.generate_s for r in records}
    assert {r.prompt: r.protocol["declared_generate_s"] for r in ours} == measured


def test_old_slug_only_names_still_read_where_unambiguous(tmp_path):
    folder = tmp_path / "c"
    write_video(folder / "a-red-circle__s0.mp4", Video(moving_square(), 8))
    assert find_made_elsewhere(folder, "A red circle!", 0, ["A red circle!", "a blue star"]).name == \
        "a-red-circle__s0.mp4"
    with pytest.raises(UserError, match=r"cannot tell the prompts 'A red circle!' and 'a red circle' apart"):
        find_made_elsewhere(folder, "A red circle!", 0, ["A red circle!", "a red circle"])
    from eval.engine import Item

    # an old run folder resumes with its file names
    run = tmp_path / "run"
    old = run / "videos" / "m" / "c" / "a-red-circle__s0.mp4"
    write_video(old, Video(moving_square(), 8))
    item = Item("m", "c", "A red circle!", 0)
    assert run / item.existing_video_path(run, ["A red circle!", "a blue star"]) == old
    assert item.existing_video_path(run, ["A red circle!", "a red circle"]) == item.video_path


def test_check_lists_what_is_missing_or_ambiguous_and_writes_nothing(tmp_path, tiny_clip, capsys):
    bench = _bench(tmp_path, tiny_clip, ["A red circle!", "a red circle", "a blue star"])
    pre = tmp_path / "pre" / "c"
    write_video(pre / "a-red-circle__s0.mp4", Video(moving_square(), 8))  # an old name both prompts slug to
    (tmp_path / "settings.json").write_text(json.dumps({"methods": {"Ours": {"steps": 3}}}))
    out = tmp_path / "out"
    code, stdout, err = _run("--methods", f"Ours=precomputed:{pre.parent}", "--benchmark", bench, "--out", out,
                             "--settings", tmp_path / "settings.json", "--check", capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and not out.exists() and all(line.startswith("error: ") for line in lines)
    assert any("cannot tell the prompts 'A red circle!' and 'a red circle' apart" in line for line in lines)
    assert any(f"{pre / video_name('a blue star', 0)}: no such video" in line for line in lines)
    assert any("settings.json: method 'precomputed' has no settings to set" in line for line in lines)
    # the same pre-flight stops a run before anything is written, in one line
    code, _, err = _run("--methods", f"Ours=precomputed:{pre.parent}", "--benchmark", bench, "--out", out,
                        capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no such video" in err and not out.exists()
    for prompt in ["A red circle!", "a blue star"]:
        write_video(pre / video_name(prompt, 0), Video(moving_square(), 8))
    code, stdout, err = _run("--methods", f"Ours=precomputed:{pre.parent}", "--benchmark", bench, "--out", out,
                             "--check", capsys=capsys)
    assert code == 0 and "nothing written" in stdout and not out.exists()
    # a folder made with other metric settings is named too, as the run would refuse it
    assert _run("--methods", f"Ours=precomputed:{pre.parent}", "--benchmark", bench, "--out", out)[0] == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*"))
    code, _, err = _run("--methods", f"Ours=precomputed:{pre.parent}", "--benchmark", bench, "--out", out,
                        "--clip-frames", "2", "--check", capsys=capsys)
    assert code == 2 and "this run was made with other metric specs" in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*")) == before


def test_a_label_names_any_method():
    from eval.methods import create_method

    assert create_method("Ours=t2v:shapes").label == "Ours" and create_method("t2v:shapes").label == "t2v-shapes"
    assert create_method("Mine=reference").label == "Mine"


@pytest.mark.parametrize("spec, message", [
    ("+Ours=reference", "method label '+Ours'"), ("Ours=", "names no method"),
    ("Ours=reference,Ours=reference", "the label(s) Ours name two methods")])
def test_labels_are_checked(tmp_path, tiny_clip, capsys, spec, message):
    bench = _bench(tmp_path, tiny_clip, ["a red circle"])
    code, _, err = _run("--methods", spec, "--benchmark", bench, "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_precomputed_folder_at_twice_the_size_is_resampled_or_refused(tmp_path, tiny_clip, capsys):
    bench = _bench(tmp_path, tiny_clip, ["a red circle", "a blue star"], size=(20, 32))
    pre = tmp_path / "pre"
    for i, prompt in enumerate(["a red circle", "a blue star"]):
        write_video(pre / "c" / video_name(prompt, 0), Video(moving_square(12, 40, 64, seed=i), 16))
    out = tmp_path / "refused"
    code, _, err = _run("--methods", f"precomputed:{pre}", "--benchmark", bench, "--out", out,
                        "--outside-videos", "refuse", capsys=capsys)
    assert code == 2 and not out.exists() and len(err.strip().splitlines()) == 1
    assert "frames 12 (the benchmark's: 8), fps 16 (the benchmark's: 8), size 40×64 (the benchmark's: 20×32)" in err
    out = tmp_path / "resampled"
    assert _run("--methods", f"reference,precomputed:{pre}", "--benchmark", bench, "--out", out)[0] == 0
    records = [r for r in RunFolder(out).records() if r.method == "precomputed-pre"]
    assert [(r.num_frames, r.fps, r.size) for r in records] == [(8, 8.0, [20, 32])] * 2
    assert records[0].provenance["original"] == {"frames": 12, "fps": 16.0, "size": [40, 64]}
    assert records[0].provenance["resampled"] == {"frames": [12, 8], "fps": [16.0, 8.0], "size": [[40, 64], [20, 32]]}
    # the rule, computed independently: nearest of uniformly spaced frames, then an area filter to 20×32
    import cv2

    source = read_video(pre / "c" / video_name("a red circle", 0)).frames
    want = np.stack([cv2.resize(source[round(i * 11 / 7)], (32, 20), interpolation=cv2.INTER_AREA) for i in range(8)])
    got = read_video(out / records[0].video).frames
    assert np.abs(got.astype(int) - want).mean() < 3  # what H.264 costs


def test_a_study_of_mixed_sizes_has_one_media_size_per_item(tmp_path):
    from tests.fixture_runs import make_run
    from eval.video import video_geometry

    run = make_run(tmp_path / "r", ("vmc", "tav"))
    for video in (run / "videos" / "tav").rglob("*.mp4"):  # tav's videos at twice the size, 16 fps
        write_video(video, Video(np.repeat(np.repeat(read_video(video).frames, 2, 1), 2, 2), 16))
    code, _, _ = run_main(__import__("human_study.__main__", fromlist=["main"]).main, "export", "--run", run,
                          "--methods", "vmc,tav", "--out", tmp_path / "study", "--checks", "1", "--seed", "3")
    assert code in (0, None)
    study = json.loads((tmp_path / "study" / "rater" / "study.json").read_text())
    for item in study["items"]:
        files = [item["reference"]] + [c["video"] for c in item["candidates"]]
        geometries = {video_geometry(tmp_path / "study" / "rater" / f) for f in files}
        assert len(geometries) == 1, (item["item_id"], geometries)


def test_eval_score_takes_a_folder_of_mixed_sizes_and_a_crash_leaves_no_run_json(tmp_path, tiny_clip, capsys):
    from eval.score import main as score_main

    videos = tmp_path / "v"
    write_video(tmp_path / "ref.mp4", Video(moving_square(10, 48, 48), 12))
    rows = []
    for i, (t, h, w, fps) in enumerate([(8, 40, 64, 8), (12, 32, 32, 16), (6, 64, 48, 24)]):
        write_video(videos / f"v{i}.mp4", Video(moving_square(t, h, w, seed=i), fps))
        rows.append({"video": f"v{i}.mp4", "prompt": f"a square {i}", "reference": "ref.mp4"})
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    cfg, ckpt = tiny_clip
    args = ["--videos", videos, "--prompts", tmp_path / "p.csv", "--clip-model", cfg, "--clip-pretrained", ckpt,
            "--device", "cpu", "--workers", "0"]
    assert run_main(score_main, *args, "--out", tmp_path / "s", capsys=capsys)[0] in (0, None)
    records = RunFolder(tmp_path / "s").records()
    assert [r.size for r in records] == [[40, 64], [32, 32], [64, 48]]
    assert all(r.metrics["text_alignment"] is not None for r in records)
    (videos / "v0.mp4").write_bytes(b"garbage")
    code, _, err = run_main(score_main, *args, "--out", tmp_path / "crashed", capsys=capsys)
    assert code == 2 and "v0.mp4: not a readable video" in err and not (tmp_path / "crashed" / "run.json").exists()


def test_an_old_folder_whose_prompts_shared_a_video_is_mended_on_resume(tmp_path, tiny_clip, capsys):
    bench = _bench(tmp_path, tiny_clip, ["a red circle", "A red circle!"])
    out = tmp_path / "run"
    assert _run("--methods", "reference", "--benchmark", bench, "--out", out)[0] == 0
    folder = RunFolder(out)
    first, second = folder.records()
    (out / second.video).unlink()  # as the slug-only names left it: the second prompt scored on the first's file
    folder.replace([first, type(second)(**{**second.__dict__, "video": first.video})])
    code, _, err = _run("--methods", "reference", "--benchmark", bench, "--out", out, capsys=capsys)
    assert code == 0 and "1 record(s) were scored on another prompt's video" in err
    mended = {r.prompt: r.video for r in RunFolder(out).records()}
    assert mended == {"a red circle": first.video, "A red circle!": second.video} and (out / second.video).is_file()
