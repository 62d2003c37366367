"""Adaptation and generation of every native method on the latent video backbone (ZeroScope's layout), per video,
measured side by side in one process: seconds, the ratio of each generation to t2v's, and peak GPU memory.

    python bench/zeroscope.py                      # GPU: ZeroScope's published sizes, random weights (24 × 320 × 576)
    python bench/zeroscope.py --size tiny          # CPU: the tiny random model (a check that the bench runs)

The model is written once by `python -m vmc.tools.make_tiny_zeroscope` (--official-size) to --model (random
weights: timing only, nothing meaningful is generated). Each method adapts to one synthetic clip (a square
crossing the frame) with its official settings, except that a tuning method trains `--steps` steps (default 20)
and the time of its official step count is extrapolated from the time per step; then it generates one video.
Published figures to compare with (RECIPES): MotionDirector about 14 GB and 1.5–4.5 minutes per video on an
A5000; DMT about 32 GB and 7 minutes per video on an A40.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = "t2v,vmc,vmc-eps,tav,md,motion-inversion,motionclone,dmt,inversion"


def synthetic_case(frames: int, folder: Path):
    """A 64×112 textured square crossing a grey frame from left to right, as an MP4 reference."""
    from eval.manifest import Case
    from eval.video import Video, write_video

    h, w, size = 320, 576, 64
    rng = np.random.default_rng(0)
    texture = (rng.random((size, size, 3)) * 200 + 30).astype(np.uint8)
    clip = np.full((frames, h, w, 3), 90, np.uint8)
    for t in range(frames):
        x = int(t * (w - size) / max(frames - 1, 1))
        clip[t, h // 2 - size // 2:h // 2 + size // 2, x:x + size] = texture
    reference = write_video(folder / "square.mp4", Video(clip, 8))
    return Case(id="square", reference=reference, train_prompt="a square is moving right",
                target_prompts=("a red ball is moving right",), frames=frames)


def peak_gb(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if torch.device(device).type == "cuda" else None


def measure(name: str, model: Path, case, device: str, steps: int, cache: Path) -> dict:
    from eval.methods import create_method
    from vmc.families.tuning import TuningMethod

    method = create_method(f"{name}:{model}", device)
    method.cache_dir = cache
    official = None
    if isinstance(method, TuningMethod) and method.trains:
        official = method.train_config().steps
        method.configure({"steps": steps})
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    state = method.adapt(case)
    adapt_s = time.perf_counter() - t0
    adapt_peak = peak_gb(device)
    protocol = method.protocol(state) or {}
    if official is not None:  # the official number of steps, from the time per step measured
        train_s = protocol.get("train_s", 0.0)
        adapt_s += train_s * (official / steps - 1)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    method.generate(state, case.target_prompts[0], 0)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return {"adapt_s": adapt_s, "generate_s": time.perf_counter() - t0, "adapt_gb": adapt_peak,
            "generate_gb": peak_gb(device), "trained": protocol.get("trained_parameters", 0),
            "official_steps": official}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=["official", "tiny"], default="official")
    p.add_argument("--model", type=Path, default=None, help="where the random model is (written when absent; "
                   "default /tmp/bench-zeroscope-SIZE)")
    p.add_argument("--methods", default=METHODS)
    p.add_argument("--steps", type=int, default=20, help="training steps actually run by a tuning method")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    model = args.model or Path(f"/tmp/bench-zeroscope-{args.size}")
    if not (model / "model_index.json").is_file():
        from vmc.tools.make_tiny_zeroscope import make

        t0 = time.perf_counter()
        make(model, size=args.size)
        print(f"random {args.size} model written to {model} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    settings = json.loads((model / "cascade.json").read_text())["settings"]
    frames = settings.get("num_frames", 24)
    with tempfile.TemporaryDirectory() as tmp:
        case = synthetic_case(frames, Path(tmp))
        rows = {name: measure(name, model, case, args.device, args.steps, Path(tmp) / "cache")
                for name in args.methods.split(",")}
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"latent video backbone, {args.size} size, random weights, {where}; "
          f"tuning methods: {args.steps} steps run, official count extrapolated")
    base = rows.get("t2v", {}).get("generate_s")
    print(f"{'method':<18}{'trained':>12}{'adapt s':>10}{'generate s':>12}{'× t2v':>8}{'adapt GB':>10}{'gen GB':>8}")
    for name, r in rows.items():
        ratio = f"{r['generate_s'] / base:.2f}" if base else "-"
        gb = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
        print(f"{name:<18}{r['trained']:>12,}{r['adapt_s']:>10.1f}{r['generate_s']:>12.1f}{ratio:>8}"
              f"{gb(r['adapt_gb']):>10}{gb(r['generate_gb']):>8}")


if __name__ == "__main__":
    main()
