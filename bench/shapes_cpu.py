"""CPU speed of the shapes-world work behind `eval.run` (what its `--jobs auto` and the frame convs rest on):

1. the keyframe UNet's VMC training step (forward + backward, batch 1, 8×16×16) and one whole cascade sample,
   with the temporal convs as 2D convolutions (FrameConvLayer, the default) and as the 3D ones, side by side;
2. throughput of one process using every thread against one single-threaded process per thread, each doing
   the same training steps at once.

    python bench/shapes_cpu.py [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def setup():
    from vmc.backbones import resolve_backbone
    from vmc.backbones.show1 import Show1Cascade
    from vmc.parameters import select_parameters

    cascade = Show1Cascade(resolve_backbone("shapes"), "cpu")
    unet = cascade.load_unet(cascade.backbone.base).float().train()
    unet.requires_grad_(False)
    for p in select_parameters(unet, "qkv").values():
        p.requires_grad_(True)
    return cascade, unet


def train_steps(unet, steps: int) -> float:
    """Seconds per step."""
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(1, 3, 8, 16, 16, generator=g), torch.randn(1, 77, 64, generator=g)
    unet(x, torch.tensor([500]), text).sample.mean().backward()
    t0 = time.perf_counter()
    for _ in range(steps):
        unet(x, torch.tensor([500]), text).sample.square().mean().backward()
    return (time.perf_counter() - t0) / steps


def set_conv_kind(model, kind):
    from diffusers.models.resnet import TemporalConvLayer

    from vmc.models.temporal_conv import FrameConvLayer

    for m in model.modules():
        if isinstance(m, TemporalConvLayer):
            m.__class__ = FrameConvLayer if kind == "frame" else TemporalConvLayer


def worker(steps: int):
    """One process's training steps (the throughput comparison)."""
    _, unet = setup()
    print(train_steps(unet, steps))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.steps)
    threads = torch.get_num_threads()
    print(f"{threads} threads; {args.steps} training steps, {args.repeats} alternations")
    cascade, unet = setup()
    prompt = "a red circle is moving to the right on a blue background"
    cascade.run(prompt, 0, keyframe_unet=unet.eval())  # loads (and keeps) the other stages' UNets
    for _ in range(args.repeats):
        for kind in ("frame", "3d"):
            for model in (unet, *cascade._kept.values()):
                set_conv_kind(model, kind)
            step = train_steps(unet.train(), args.steps)
            t0 = time.perf_counter()
            cascade.run(prompt, 0, keyframe_unet=unet.eval())
            sample = time.perf_counter() - t0
            print(f"  temporal convs {kind:5s}: training step {step * 1e3:6.1f} ms   cascade sample {sample:5.2f} s")

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps)]
    unet.train()
    for _ in range(args.repeats):
        one = train_steps(unet, args.steps)
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(threads)]
        per_step = [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        print(f"  1 process × {threads} threads: {1 / one:5.2f} steps/s   {threads} processes × 1 thread: "
              f"{sum(1 / s for s in per_step):5.2f} steps/s ({sum(1 / s for s in per_step) * one:.2f}×)")


if __name__ == "__main__":
    main()
