"""External systems: a fake command that writes known videos, fails, hangs or writes garbage; ingestion;
resampling to the protocol and the provenance recorded with every result."""

import json
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import REPO, run_main
from eval.errors import UserError
from eval.manifest import load_benchmark
from eval.methods import create_method
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from eval.video import sample_indices

HELPER = str(REPO / "tests" / "helpers_fake_system.py")
TRICKY = 'a red square; rm -rf "$HOME" $(echo pwned) {seed}'


def _config(tmp_path, mode="ok", **extra):
    cfg = {"command": [sys.executable, HELPER, "--reference", "{reference}", "--prompt", "{prompt}", "--seed", "{seed}",
                       "--out", "{out}", "--mode", mode], "version": "fake 1.0", "protocol": {"size": [32, 32]},
           **extra}
    path = tmp_path / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _method(spec, tmp_path, benchmark_dir):
    method = create_method(spec)
    method.cache_dir = tmp_path / "cache"
    case = load_benchmark(benchmark_dir / "mini.yaml").case("right")
    return method, method.adapt(case)


def test_command_output_is_resampled_and_its_provenance_recorded(benchmark_dir, tmp_path):
    method, state = _method(f"videocomposer:{_config(tmp_path)}", tmp_path, benchmark_dir)
    video = method.generate(state, TRICKY, 5)
    assert (video.num_frames, video.fps, video.size) == (8, 8.0, (32, 32))  # the reference: 8 frames at 8 fps
    want = [10 * i + 5 for i in sample_indices(12, 8)]
    got = [float(f.mean()) for f in video.frames]
    assert np.allclose(got, want, atol=2), (got, want)
    prov = method.provenance(state, TRICKY, 5)
    assert prov["mode"] == "command" and prov["version"] == "fake 1.0" and prov["system"] == "videocomposer"
    assert prov["original"] == {"frames": 12, "fps": 24.0, "size": [40, 56]}
    assert prov["resampled"] == {"frames": [12, 8], "fps": [24.0, 8.0], "size": [[40, 56], [32, 32]]}
    assert TRICKY in prov["command"]  # one argument, never split or interpreted by a shell
    log = open(prov["log"]).read()
    assert f"prompt={TRICKY!r} reference_exists=True" in log
    mtime = (tmp_path / "cache" / "right" / "reference.mp4").stat().st_mtime
    before = open(prov["log"]).read()
    method.generate(state, TRICKY, 5)  # finished output reused, the system not run again
    assert open(prov["log"]).read() == before and mtime == (tmp_path / "cache" / "right" / "reference.mp4").stat().st_mtime


@pytest.mark.parametrize("mode, message", [("fail", "exited with status 3 on case right"),
                                           ("corrupt", "unusable output"),
                                           ("nothing", "wrote no video")])
def test_failures_are_one_clear_error_with_the_log(benchmark_dir, tmp_path, mode, message):
    method, state = _method(f"control-a-video:{_config(tmp_path, mode)}", tmp_path, benchmark_dir)
    with pytest.raises(UserError) as err:
        method.generate(state, "a red square", 0)
    text = str(err.value)
    assert message in text and "\n" not in text
    assert "log: " in text or mode == "corrupt"
    if mode == "fail":
        assert "CUDA out of memory (simulated)" in text


def test_a_hanging_command_times_out(benchmark_dir, tmp_path):
    method, state = _method(f"gen1:{_config(tmp_path, 'hang', timeout_s=2)}", tmp_path, benchmark_dir)
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="timed out after 2 s on case right"):
        method.generate(state, "a red square", 0)
    assert time.perf_counter() - t0 < 20


@pytest.mark.parametrize("cfg, message", [
    ({"command": "python run.py --video {reference}"}, "must contain {out}"),
    ({"command": "run {out} {speed}"}, "unknown or malformed placeholder"),
    ({"command": "run {out}", "ingest": "."}, "exactly one of"),
    ({"command": "run {out}", "colour": 1}, "unknown field(s) colour"),
    ({"ingest": "no/such/folder"}, "no such folder"),
    ({"command": "run {out}", "protocol": {"size": [32]}}, "protocol.size"),
])
def test_bad_configs_fail_in_one_line_naming_the_file(tmp_path, cfg, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError) as err:
        create_method(f"external:{path}")
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_ingested_outputs_keep_their_provenance(benchmark_dir, tmp_path):
    from eval.video import Video, write_video

    folder = tmp_path / "outputs"
    write_video(folder / "right" / "a-red-square-is-moving-right__s0.mp4",
                Video(np.full((8, 40, 64, 3), 90, np.uint8), 8.0))
    write_video(folder / "right" / "a-star-is-moving-right.mp4", Video(np.full((20, 48, 64, 3), 50, np.uint8), 10.0))
    cfg = tmp_path / "gen1.yaml"
    cfg.write_text(yaml.safe_dump({"ingest": str(folder), "version": "gen-1 (web, 2023-06)"}))
    method, state = _method(f"gen1:{cfg}", tmp_path, benchmark_dir)
    same = method.generate(state, "a red square is moving right", 0)
    assert same.num_frames == 8 and method.provenance(state, "a red square is moving right", 0)["resampled"] is None
    other = method.generate(state, "a star is moving right", 0)
    prov = method.provenance(state, "a star is moving right", 0)
    # no protocol size given: the case's, here its reference clip's 40×64 (issue 42: the size is no longer kept)
    assert (other.num_frames, other.fps, other.size) == (8, 8.0, (40, 64))
    assert prov["mode"] == "ingested" and prov["original"] == {"frames": 20, "fps": 10.0, "size": [48, 64]}
    assert prov["resampled"] == {"frames": [20, 8], "fps": [10.0, 8.0], "size": [[48, 64], [40, 64]]}
    assert prov["rule"].startswith("time:")
    with pytest.raises(UserError, match="no such video"):
        method.generate(state, "an unknown prompt", 0)


def test_eval_run_records_provenance_with_every_result(benchmark_dir, tiny_clip, tmp_path):
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "m.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "run"
    spec = f"videocomposer:{_config(tmp_path)}"
    assert run_main(run_main_cli, "--methods", spec, "--benchmark", benchmark_dir / "m.yaml", "--out", out,
                    "--device", "cpu")[0] == 0
    records = RunFolder(out).records()
    assert len(records) == 3 and all(r.method == "videocomposer" for r in records)
    assert all(r.provenance["mode"] == "command" and r.provenance["original"]["fps"] == 24.0 for r in records)
    assert all(r.size == [32, 32] for r in records)
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["videocomposer"]["version"] == "fake 1.0"
