import csv

import pandas as pd
import pytest

from conftest import moving_square, run_cli, run_main
from eval.score import main as score_main
from eval.rundir import RunFolder
from eval.video import Video, write_video


def _folder(tmp_path, n=5):
    videos = tmp_path / "outputs"
    write_video(tmp_path / "ref.mp4", Video(moving_square(vx=3, vy=1), 8))
    rows = []
    for i in range(n):
        write_video(videos / f"v{i}.mp4", Video(moving_square(vx=3 - i, vy=1, seed=i), 8))
        rows.append({"video": f"v{i}.mp4", "prompt": f"a square number {i}", "reference": "ref.mp4"})
    with open(tmp_path / "prompts.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["video", "prompt", "reference"])
        w.writeheader()
        w.writerows(rows)
    return videos, tmp_path / "prompts.csv"


def _clip_args(tiny_clip):
    cfg, ckpt = tiny_clip
    return ["--clip-model", cfg, "--clip-pretrained", ckpt, "--device", "cpu"]


def test_scores_a_folder_and_agrees_with_in_process_scoring(tmp_path, tiny_clip):
    videos, prompts = _folder(tmp_path)
    out = tmp_path / "scores"
    run_cli("-m", "eval.score", "--videos", videos, "--prompts", prompts, "--out", out, "--workers", "2",
            "--batch-size", "12", *_clip_args(tiny_clip))
    records = RunFolder(out).records()
    assert [r.video for r in records] == [f"v{i}.mp4" for i in range(5)]
    assert records[0].metrics["motion_trajectory_cos"] > 0.9 and records[0].method == "outputs"
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.metric) >= {"text_alignment", "clip_score", "temporal_consistency", "motion_epe"}

    from eval.metrics import ClipMetric, MotionMetric, Sample, TrackMotionMetric
    from eval.scoring import Scorer
    from eval.video import read_video

    cfg, ckpt = tiny_clip
    scorer = Scorer([ClipMetric(str(cfg), str(ckpt), device="cpu"), MotionMetric(), TrackMotionMetric()])
    ref = read_video(tmp_path / "ref.mp4").frames
    direct = scorer.score_many([Sample(read_video(videos / "v3.mp4").frames, "a square number 3", ref)])[0]
    assert records[3].undefined == direct["undefined"]
    defined = {k: v for k, v in direct["metrics"].items() if v is not None}
    assert {k: v for k, v in records[3].metrics.items() if v is not None} == \
        pytest.approx(defined, rel=1e-6, abs=1e-5)  # ×100 fields: 1e-7 × 100


def test_rerun_skips_scored_videos(tmp_path, tiny_clip):
    videos, prompts = _folder(tmp_path, n=3)
    out = tmp_path / "scores"
    args = ["--videos", videos, "--prompts", prompts, "--out", out, "--workers", "0", *_clip_args(tiny_clip)]
    assert run_main(score_main, *args)[0] == 0
    first = RunFolder(out).records()
    assert run_main(score_main, *args)[0] == 0
    assert RunFolder(out).records() == first
    code = run_main(score_main, *args, "--clip-frames", "2")[0]
    assert code == 2 and RunFolder(out).records() == first  # other settings: refused, untouched


@pytest.mark.parametrize("breakage,message", [
    ("no_csv", "prompts.csv: no such prompts CSV"),
    ("bad_header", "needs a header with columns video,prompt"),
    ("missing_video", "line 3: video 'v1.mp4' not found"),
    ("missing_reference", "line 2: reference 'ref.mp4' not found"),
    ("corrupt_video", "v2.mp4: not a readable video"),
])
def test_bad_inputs(tmp_path, tiny_clip, breakage, message, capsys):
    videos, prompts = _folder(tmp_path, n=3)
    if breakage == "no_csv":
        prompts.unlink()
    elif breakage == "bad_header":
        prompts.write_text("file,text\nv0.mp4,a\n")
    elif breakage == "missing_video":
        (videos / "v1.mp4").unlink()
    elif breakage == "missing_reference":
        (tmp_path / "ref.mp4").unlink()
    elif breakage == "corrupt_video":
        (videos / "v2.mp4").write_bytes(b"\x00broken" * 99)
    out = tmp_path / "scores"
    code, _, err = run_main(score_main, "--videos", videos, "--prompts", prompts, "--out", out, "--workers", "0",
                            *_clip_args(tiny_clip), capsys=capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], err
    assert not (out / "summary.csv").exists()
