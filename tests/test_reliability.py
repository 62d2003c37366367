"""Run folders under faults: one writer at a time, byte-identical results however a run is split or resumed,
facts that survive a kill, nothing durable before the inputs are read, and folders that open from anywhere."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

from conftest import REPO, mini_with_tiny_clip, moving_square, run_cli, run_main, shapes_subset
from eval.rundir import RunFolder
from eval.run import main as run_main_cli
from eval.video import Video, write_video

SLOW = REPO / "tests" / "helpers_slow_method.py"


def _wait_for_records(out, n, proc, timeout=120):
    deadline = time.time() + timeout
    while len(RunFolder(out).records()) < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)


def _fingerprint(out):
    """Every video's bytes and every record without its timings: what must not depend on how a run went."""
    videos = {str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest()
              for p in sorted((out / "videos").rglob("*.mp4"))}
    records = [json.dumps({**{k: v for k, v in r.to_json().items() if k != "timing"},
                           "protocol": {k: v for k, v in r.protocol.items() if k != "train_s"}}, sort_keys=True)
               for r in RunFolder(out).records()]
    return videos, records


def test_a_second_writer_is_refused_while_the_first_runs(benchmark_dir, tiny_clip):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = [SLOW, "--methods", "slow", "--benchmark", bench, "--seeds", "0,1", "--out", out]
    first = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "SLOW_METHOD_S": "60"})
    deadline = time.time() + 120
    while not (out / "run.json").exists() and time.time() < deadline:  # written once the lock is held
        time.sleep(0.05)
    second = run_cli(*args, check=False)
    assert first.poll() is None
    first.kill()
    first.wait()
    assert second.returncode == 2, second.stderr
    assert f"{out}: another process is writing this run folder (pid {first.pid}" in second.stderr
    assert second.stderr.count("\n") == 1
    run_cli(*args)
    keys = [r.key for r in RunFolder(out).records()]
    assert len(keys) == len(set(keys)) == 6
    assert len((out / "results.jsonl").read_text().splitlines()) == 6


def test_the_lock_dies_with_a_killed_writer_and_its_workers_share_it(benchmark_dir, tiny_clip):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = [SLOW, "--methods", "slow", "--benchmark", bench, "--seeds", "0,1,2", "--out", out]
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for_records(out, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_cli(*args)  # not stuck: the lock went with the process
    assert len(RunFolder(out).records()) == 9


def test_readers_count_a_key_once_and_a_rerun_mends_the_file(benchmark_dir, tiny_clip):
    """A folder written by two runs at once before the lock existed holds every key twice."""
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = ["--methods", "reference", "--benchmark", bench, "--out", out]
    assert run_main(run_main_cli, *args)[0] == 0
    text = (out / "results.jsonl").read_text()
    (out / "results.jsonl").write_text(text + text)
    assert len(RunFolder(out).records()) == 3
    assert run_main(run_main_cli, *args)[0] == 0
    assert (out / "results.jsonl").read_text() == text
    import pandas as pd

    assert set(pd.read_csv(out / "summary.csv").n) == {3}


def _small_shapes_run(tmp_path):
    """The shapes backbone with few sampling and adaptation steps, and one held-out case of two prompts: two
    (method, case) groups, so that --jobs 2 and torchrun split the run."""
    backbone = tmp_path / "shapes-fast"
    shutil.copytree(REPO / "vmc" / "shapes" / "weights", backbone)
    meta = json.loads((backbone / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=3, interp_steps=2, sr1_steps=2)
    meta["vmc"].update(steps=4, inversion_steps=3)
    (backbone / "cascade.json").write_text(json.dumps(meta))
    bench = shapes_subset(tmp_path / "small.yaml", ["rise"], prompts=2)
    return ["--methods", f"reference,vmc:{backbone}", "--benchmark", str(bench), "--seeds", "0,1",
            "--device", "cpu"]


def test_results_are_byte_identical_however_the_run_is_split_or_resumed(tmp_path):
    args = _small_shapes_run(tmp_path)
    run_cli("-m", "eval.run", *args, "--out", tmp_path / "whole", "--jobs", "1")
    expected = _fingerprint(tmp_path / "whole")
    assert len(expected[0]) == 8 and len(expected[1]) == 8

    run_cli("-m", "eval.run", *args, "--out", tmp_path / "jobs2", "--jobs", "2")
    run_cli("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531", "-m", "eval.run",
            *args, "--out", tmp_path / "torchrun", env={"OMP_NUM_THREADS": "1"})
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "eval.run", *args, "--out", str(killed), "--jobs", "1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # killed after the first vmc video: the resume reloads the cached adapter and inverted noise
    _wait_for_records(killed, 5, proc, timeout=300)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 5 <= len(RunFolder(killed).records()) < 8
    run_cli("-m", "eval.run", *args, "--out", killed)
    for name in ("jobs2", "torchrun", "killed"):
        assert _fingerprint(tmp_path / name) == expected, name


def test_a_video_found_on_disk_keeps_its_generation_time(benchmark_dir, tiny_clip):
    """As after a kill between writing a video and recording its scores."""
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = ["--methods", "reference", "--benchmark", bench, "--out", out]
    assert run_main(run_main_cli, *args)[0] == 0
    before = {r.key: r.timing.generate_s for r in RunFolder(out).records()}
    (out / "results.jsonl").unlink()
    assert run_main(run_main_cli, *args)[0] == 0
    after = {r.key: r.timing.generate_s for r in RunFolder(out).records()}
    assert after == before and None not in after.values()


def test_a_failed_start_leaves_nothing_that_binds_the_fixed_command(benchmark_dir, tiny_clip, capsys):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    clip = benchmark_dir / "clips" / "right.mp4"
    good = clip.read_bytes()
    clip.write_bytes(good[:int(len(good) * 0.8)])  # cut short, as by an interrupted copy
    out = benchmark_dir / "run"
    code, _, err = run_main(run_main_cli, "--methods", "reference", "--benchmark", bench, "--out", out,
                            capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{clip}: the file is" in err and "cut short" in err and ".cc:" not in err
    assert not out.exists()
    clip.write_bytes(good)
    assert run_main(run_main_cli, "--methods", "reference", "--benchmark", bench, "--out", out,
                    "--clip-frames", "4")[0] == 0


def test_settings_bind_a_folder_only_once_something_was_made_with_them(benchmark_dir, tiny_clip, capsys):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = ["--methods", "reference", "--benchmark", bench, "--out", out]
    assert run_main(run_main_cli, *args)[0] == 0
    (out / "results.jsonl").unlink()
    shutil.rmtree(out / "videos")  # as a run that died before its first video
    assert run_main(run_main_cli, *args, "--clip-frames", "4")[0] == 0
    assert json.loads((out / "run.json").read_text())["metric_specs"]["clip"]["frames"] != "all"
    code, _, err = run_main(run_main_cli, *args, capsys=capsys)  # now records exist: refused
    assert code == 2 and "made with other metric specs" in err


def _score_folder(root, tiny_clip):
    """eval.score run from `root` with paths relative to it, as a user would type them."""
    cfg, ckpt = tiny_clip
    (root / "vids").mkdir(parents=True)
    write_video(root / "vids" / "ref.mp4", Video(moving_square(vx=3, vy=1), 8))
    for i, method in enumerate(["a", "b"]):
        write_video(root / "vids" / f"{method}.mp4", Video(moving_square(vx=3 - i, vy=1, seed=i), 8))
    (root / "prompts.csv").write_text("video,prompt,reference,method\n"
                                      "a.mp4,a square moving right,vids/ref.mp4,a\n"
                                      "b.mp4,a square moving right,vids/ref.mp4,b\n")
    run_cli("-m", "eval.score", "--videos", "vids", "--prompts", "prompts.csv", "--out", "scores",
            "--clip-model", cfg, "--clip-pretrained", ckpt, cwd=root)
    return root / "scores"


def opens(folder, methods, elsewhere):
    """The folder opens in eval.compare, human_study export and the dashboard's loaders (its records, each
    video and reference clip), from a working directory that is not the one it was made in."""
    import dashboard.data

    run_cli("-m", "eval.compare", folder, "--methods", ",".join(methods), cwd=elsewhere)
    run_cli("-m", "human_study", "export", "--run", folder, "--methods", ",".join(methods), "--checks", "0",
            "--out", elsewhere / f"study-{folder.parent.name}-{folder.name}", cwd=elsewhere)
    cwd = os.getcwd()
    os.chdir(elsewhere)
    try:
        records = dashboard.data.load_records(folder)
        assert len(dashboard.data.load_table(folder)) == len(records) > 0
        for r in records.values():
            assert dashboard.data.video_path(folder, r).is_file()
            assert dashboard.data.reference_path(folder, r).is_file()
    finally:
        os.chdir(cwd)


def test_a_score_folder_opens_from_anywhere_and_after_a_move(tmp_path, tiny_clip):
    scores = _score_folder(tmp_path / "made", tiny_clip)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    opens(scores, ["a", "b"], elsewhere)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "made", moved)
    opens(moved / "scores", ["a", "b"], elsewhere)


def test_an_old_score_folder_resumed_stores_its_paths_the_new_way(tmp_path, tiny_clip):
    """Folders written before paths were stored relative to them still open, and resuming one converts it."""
    scores = _score_folder(tmp_path / "made", tiny_clip)
    config = json.loads((scores / "run.json").read_text())
    # as the earlier eval.score wrote them: relative to where it ran
    records = [replace(r, reference="vids/ref.mp4") for r in RunFolder(scores).records()]
    (scores / "results.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    old = {k: v for k, v in config.items() if k not in ("paths", "written_at")}
    (scores / "run.json").write_text(json.dumps({**old, "videos": "vids", "prompts": "prompts.csv"}))
    cwd = os.getcwd()
    os.chdir(tmp_path / "made")
    try:
        folder = RunFolder(scores)
        assert all(folder.video(r).is_file() and folder.reference(r).is_file() for r in folder.records())
    finally:
        os.chdir(cwd)
    cfg, ckpt = tiny_clip
    run_cli("-m", "eval.score", "--videos", "vids", "--prompts", "prompts.csv", "--out", "scores",
            "--clip-model", cfg, "--clip-pretrained", ckpt, cwd=tmp_path / "made")
    assert {r.reference for r in RunFolder(scores).records()} == {"../vids/ref.mp4"}
    opens(scores, ["a", "b"], tmp_path)


def test_bounded_fields_have_intervals_within_their_range():
    from eval.record import Record
    from eval.results import summarize

    records = [Record(f"m|c|p{i}|0", "m", f"p{i}", f"{i}.mp4", metrics={"clip_score": v, "oracle_motion": v / 2.5},
                      case="c", seed=0)
               for i, v in enumerate([0.0, 0.0, 0.0, 2.4])]
    s = summarize(records).set_index("metric")
    assert s.loc["clip_score", "ci95_low"] == 0.0 and s.loc["oracle_motion", "ci95_low"] == 0.0
    assert 0 < s.loc["clip_score", "ci95_high"] <= 2.5
