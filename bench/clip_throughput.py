"""CLIP scoring throughput: end-to-end (decode + preprocess + encode, the eval.score path) next to the
model-only batched encoding rate of the same model, in one run.

    python bench/clip_throughput.py [--model ViT-B-32] [--videos 256] [--frames 32] [--size 256]

Random weights (nothing to download). Target: end-to-end ≥ 70% of the model-only rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.metrics import ClipMetric, MotionMetric  # noqa: E402
from eval.rundir import RunFolder  # noqa: E402
from eval.score import score_rows  # noqa: E402
from eval.scoring import Scorer  # noqa: E402
from eval.video import Video, write_video  # noqa: E402


def make_videos(folder: Path, count: int, frames: int, size: int) -> list[dict]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    rows = []
    for v in range(count):
        base = rng.integers(0, 255, 3)
        clip = np.stack([np.stack([(xx * (1 + v % 3) + t * 7 + base[0]) % 256, (yy * 2 + base[1]) % 256,
                                   ((xx + yy) + t * 5 + base[2]) % 256], -1) for t in range(frames)]).astype(np.uint8)
        path = write_video(folder / f"v{v:04d}.mp4", Video(clip, 8))
        rows.append({"key": str(v), "method": "bench", "video": path.name, "prompt": f"a video number {v % 7}",
                     "video_path": str(path), "reference_path": None, "reference": None})
    return rows


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--videos", type=int, default=256)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = p.parse_args()

    clip = ClipMetric(args.model, "random", batch_size=args.batch_size)
    dev = clip.device
    print(f"device: {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}; model {args.model} "
          f"(random weights), dtype {clip.dtype}, batch {args.batch_size}, workers {args.workers}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = make_videos(Path(tmp), args.videos, args.frames, args.size)
        print(f"wrote {args.videos} videos × {args.frames} frames at {args.size}² in {time.perf_counter() - t0:.1f} s")
        total = args.videos * args.frames

        size = clip.preprocess.size
        x = torch.randn(args.batch_size, 3, *size, device=dev, dtype=clip.dtype)
        with torch.inference_mode():
            for _ in range(3):
                clip.model.encode_image(x)
            sync(dev)
            iters = max(3, total // args.batch_size)
            t0 = time.perf_counter()
            for _ in range(iters):
                clip.model.encode_image(x)
            sync(dev)
        model_rate = iters * args.batch_size / (time.perf_counter() - t0)

        u8 = torch.randint(0, 255, (args.batch_size, args.size, args.size, 3), dtype=torch.uint8)
        clip.encode_images(u8)
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(iters):
            clip.encode_images(u8)
        sync(dev)
        pre_rate = iters * args.batch_size / (time.perf_counter() - t0)

        scorer = Scorer([clip, MotionMetric()])
        score_rows(rows[: max(1, args.workers)], scorer, RunFolder(Path(tmp) / "warm"), args.workers)
        t0 = time.perf_counter()
        score_rows(rows, scorer, RunFolder(Path(tmp) / "run"), args.workers)
        sync(dev)
        e2e_rate = total / (time.perf_counter() - t0)

    print(f"model-only encode (preprocessed batches):     {model_rate:10.0f} img/s")
    print(f"preprocess + encode (uint8 host batches):     {pre_rate:10.0f} img/s")
    print(f"end-to-end eval.score (decode+preproc+encode): {e2e_rate:10.0f} frames/s "
          f"= {100 * e2e_rate / model_rate:.0f}% of model-only (target ≥ 70%)")


if __name__ == "__main__":
    main()
