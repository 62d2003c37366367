import json
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import REPO, mini_with_tiny_clip, moving_square, run_cli, run_main
from eval.run import main as run_main_cli
from eval.naming import slugify
from eval.results import mean_ci95
from eval.rundir import RunFolder
from eval.video import Video, write_video


def _precomputed(root):
    for case, prompts, (vx, vy) in [("right", ["a red square is moving right", "a star is moving right"], (2, 1)),
                                    ("down", ["a blue square is falling"], (0, 2))]:
        for p in prompts:
            for seed in (0, 1):
                write_video(root / case / f"{slugify(p)}__s{seed}.mp4",
                            Video(moving_square(vx=vx, vy=vy, seed=seed + 5), 8))
    return root


def _comparable(records):
    """Records without what legitimately differs between runs (timings)."""
    return sorted(json.dumps({k: v for k, v in r.to_json().items() if k != "timing"}, sort_keys=True) for r in records)


def test_run_writes_the_run_directory(benchmark_dir, tiny_clip):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    pre = _precomputed(benchmark_dir / "pre")
    out = benchmark_dir / "run"
    proc = run_cli("-m", "eval.run", "--methods", f"reference,precomputed:{pre}", "--benchmark", bench,
                   "--out", out, "--seeds", "0,1")
    records = RunFolder(out).records()
    assert len(records) == 2 * 3 * 2
    r = next(x for x in records if x.method == "reference" and x.case == "right")
    assert (out / r.video).is_file() and r.video.startswith("videos/reference/right/")
    assert r.metrics["motion_trajectory_cos"] == pytest.approx(1.0, abs=1e-3)
    assert set(r.spec_ids) == set(r.metrics) and "text_cos_per_frame" in r.details
    run = json.loads((out / "run.json").read_text())
    assert run["metric_specs"]["clip"]["model"] == "tiny-clip" and "torch" in run["versions"]
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary.method == "precomputed-pre") & (summary.metric == "text_alignment")].iloc[0]
    by_prompt = {}  # the interval is over target prompts, each the mean of its two seeds
    for x in records:
        if x.method == "precomputed-pre":
            by_prompt.setdefault((x.case, x.prompt), []).append(x.metrics["text_alignment"])
    mean, lo, hi, _ = mean_ci95([sum(v) / len(v) for v in by_prompt.values()])
    assert (row.n, row.n_units, row["mean"], row.ci95_low, row.ci95_high) == \
        pytest.approx((6, 3, mean, lo, hi), rel=1e-5)
    assert "text_alignment" in proc.stdout and "precomputed-pre" in proc.stdout
    assert f"python -m eval.compare {out} --methods reference,precomputed-pre" in proc.stdout
    again = run_cli("-m", "eval.run", "--methods", f"reference,precomputed:{pre}", "--benchmark", bench,
                    "--out", out, "--seeds", "0,1")
    assert "0/0" not in again.stderr and len(RunFolder(out).records()) == 12  # all skipped


def test_kill_9_loses_nothing_and_resume_matches_uninterrupted(benchmark_dir, tiny_clip):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    args = ["--methods", "slow", "--benchmark", str(bench), "--seeds", "0,1,2"]
    run_cli(REPO / "tests" / "helpers_slow_method.py", *args, "--out", benchmark_dir / "full")
    out = benchmark_dir / "killed"
    proc = subprocess.Popen([sys.executable, REPO / "tests" / "helpers_slow_method.py", *args, "--out", out],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(RunFolder(out).records()) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = RunFolder(out).records()
    assert 2 <= len(partial) < 9 and not (out / "summary.csv").exists()
    run_cli(REPO / "tests" / "helpers_slow_method.py", *args, "--out", out)
    resumed = RunFolder(out).records()
    assert _comparable(resumed) == _comparable(RunFolder(benchmark_dir / "full").records())
    assert [r.key for r in resumed[:len(partial)]] == [r.key for r in partial]  # kept, not redone


@pytest.mark.parametrize("launcher", ["torchrun", "jobs"])
def test_two_processes_give_the_same_results_as_one(benchmark_dir, tiny_clip, launcher):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    pre = _precomputed(benchmark_dir / "pre")
    args = ["--methods", f"reference,precomputed:{pre}", "--benchmark", bench, "--seeds", "0,1", "--device", "cpu"]
    run_cli("-m", "eval.run", *args, "--out", benchmark_dir / "one")
    if launcher == "torchrun":
        run_cli("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m", "eval.run",
                *args, "--out", benchmark_dir / "two", env={"OMP_NUM_THREADS": "1"})
    else:
        proc = run_cli("-m", "eval.run", *args, "--out", benchmark_dir / "two", "--jobs", "2")
        assert "2 worker processes" in proc.stderr and "text_alignment" in proc.stdout
    one = RunFolder(benchmark_dir / "one").records()
    two = RunFolder(benchmark_dir / "two").records()
    assert [r.key for r in one] == [r.key for r in two]
    for a, b in zip(one, two):
        assert a.metrics == pytest.approx(b.metrics, abs=1e-6)
    assert not list((benchmark_dir / "two").glob("results.rank*.jsonl"))
    assert json.loads((benchmark_dir / "two" / "run.json").read_text())["world_size"] == 2
    s1, s2 = (pd.read_csv(benchmark_dir / d / "summary.csv") for d in ("one", "two"))
    s1, s2 = (s[~s.metric.str.startswith("protocol.")].reset_index(drop=True) for s in (s1, s2))  # timings differ
    pd.testing.assert_frame_equal(s1.drop(columns="std"), s2.drop(columns="std"), atol=1e-6)


@pytest.mark.parametrize("args,message", [
    (["--methods", "reference,nosuch"], "method(s) 'nosuch' not registered"),
    (["--methods", "vmc:/no/such/cascade"], "unknown backbone '/no/such/cascade'"),
    (["--methods", "reference", "--benchmark", "nowhere.yaml"], "nowhere.yaml: no such benchmark manifest"),
    (["--methods", "reference", "--seeds", "a,b"], "--seeds must be comma-separated integers"),
    (["--methods", "precomputed:/no/such/dir"], "/no/such/dir: no such folder"),
    (["--methods", "reference:x"], "method 'reference' takes no argument"),
    (["--methods", "reference", "--jobs", "0"], "--jobs must be a positive integer or auto, got '0'"),
])
def test_bad_arguments_fail_with_one_line(args, message, benchmark_dir, capsys):
    code, _, err = run_main(run_main_cli, *args, "--out", benchmark_dir / "bad", capsys=capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (benchmark_dir / "bad").exists()


def test_changed_metric_spec_refuses_to_mix_into_an_existing_run(benchmark_dir, tiny_clip, capsys):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    assert run_main(run_main_cli, "--methods", "reference", "--benchmark", bench, "--out", out)[0] == 0
    code, _, err = run_main(run_main_cli, "--methods", "reference", "--benchmark", bench, "--out", out,
                            "--clip-frames", "4", capsys=capsys)
    assert code == 2 and "made with other metric specs" in err


def test_a_method_rerun_with_other_settings_is_refused(tmp_path):
    """Resuming must not mix videos made with two settings of one method under one label."""
    from eval.engine import write_run_json
    from eval.errors import UserError

    def config(guidance, seeds):
        return {"benchmark": {"name": "b"}, "metric_specs": {}, "seeds": seeds, "created": "now",
                "methods": {"vmc": {"name": "vmc", "settings": {"inverted_keyframe_guidance": guidance}}}}

    folder = RunFolder(tmp_path)
    write_run_json(folder, config(12.0, [0]))
    write_run_json(folder, config(6.0, [0]))  # nothing made yet: the settings may still change
    write_run_json(folder, config(12.0, [0]))
    (tmp_path / "videos" / "vmc" / "right").mkdir(parents=True)
    (tmp_path / "videos" / "vmc" / "right" / "a__s0.mp4").write_bytes(b"a video")
    write_run_json(folder, config(12.0, [1]))  # same settings: more seeds merge in
    assert json.loads((tmp_path / "run.json").read_text())["seeds"] == [0, 1]
    with pytest.raises(UserError, match=r"method vmc was run here with other settings \(settings changed\)"):
        write_run_json(folder, config(3.0, [0]))


def test_corrupt_results_file_is_one_line(benchmark_dir, tiny_clip, capsys):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    out.mkdir()
    record = '{"key": "%s", "method": "m", "prompt": "p", "video": "v.mp4"}\n'
    (out / "results.jsonl").write_text(record % "a" + "not json\n" + record % "b")
    code, _, err = run_main(run_main_cli, "--methods", "reference", "--benchmark", bench, "--out", out, capsys=capsys)
    assert code == 2 and "results.jsonl: line 2 is not valid JSON" in err.strip().splitlines()[-1]


def test_a_failing_worker_stops_the_run_and_keeps_finished_work(benchmark_dir, tiny_clip):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    pre = _precomputed(benchmark_dir / "pre")
    for video in (pre / "down").iterdir():  # damaged, not missing: a missing one stops the run before it starts
        video.write_bytes(b"not a video")
    out = benchmark_dir / "run"
    start = time.monotonic()
    proc = run_cli("-m", "eval.run", "--methods", f"precomputed:{pre}", "--benchmark", bench, "--out", out,
                   "--jobs", "2", check=False)
    assert proc.returncode == 2 and time.monotonic() - start < 120
    assert re.search(r"error: \S+/pre/down/a-blue-square-is-falling__s0.mp4: not a readable video", proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1  # not also "another worker stopped"
    assert not (out / "summary.csv").exists()
