"""What each gradient-checkpointing mode holds for the backward pass of a VMC step, measurable without a GPU:
the real show-1-base config with random weights, the official qkv selection trained, one forward and backward
pass with the UNet in train mode, side by side for each mode (vmc/models/checkpointing.py). Tensors are counted
per storage as they are created and freed (LiveTensorBytes); the weights are not counted.

    python bench/activation_memory.py [--modes none,convs,full] [--size 16x24] [--frames 8]

It prints the bytes alive after the forward pass (what is held for the backward pass), the peak over both
passes, the time, and how far each mode's gradients are from the plain pass's. Activation memory grows about
in proportion to frames × height × width, so the shares carry over to the 8×40×64 of a real run; the dtypes
do not (this runs in fp32, where on a GPU autocast keeps matrix products in 16 bits and norms in fp32), so
bench/vmc_adaptation.py measures the real peak there. Each mode takes about half a minute on 2 CPU cores at
the default size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmc.configs import load_config  # noqa: E402
from vmc.models import Show1UNet3D  # noqa: E402
from vmc.models.checkpointing import MODES, LiveTensorBytes, set_gradient_checkpointing  # noqa: E402
from vmc.parameters import select_parameters  # noqa: E402


def one_pass(mode: str, frames: int, height: int, width: int) -> dict:
    config = load_config("show1-base-unet")
    torch.manual_seed(0)
    unet = Show1UNet3D.from_config(config).train()
    selected = select_parameters(unet, "qkv")  # freezes every other parameter
    set_gradient_checkpointing(unet, mode)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, frames, height, width, generator=g)
    text = torch.randn(1, 77, config["encoder_hid_dim"], generator=g)
    torch.manual_seed(2)  # the temporal convs' dropout draws
    t0 = time.perf_counter()
    with LiveTensorBytes(ignore=unet.parameters()) as memory:
        out = unet(x, torch.tensor([500]), text).sample
        held = memory.live
        out.pow(2).mean().backward()
    return {"held": held, "peak": memory.peak, "seconds": time.perf_counter() - t0,
            "grads": {k: p.grad for k, p in selected.items()}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--size", default="16x24", help="HxW of the keyframes (each a multiple of 8)")
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= set(MODES):
        p.error(f"--modes {args.modes!r}: each mode is one of {', '.join(MODES)}")
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size {args.size!r}: give it as HxW, e.g. 16x24")
    if height % 8 or width % 8:
        p.error(f"--size {args.size}: the UNet downsamples three times, so each side must be a multiple of 8")
    print(f"torch {torch.__version__}, show-1-base config on the CPU, fp32, "
          f"{args.frames}x{height}x{width}, one training forward and backward pass", flush=True)
    base = None
    for mode in modes:
        r = one_pass(mode, args.frames, height, width)
        base = base or r
        diff = max((r["grads"][k] - g).abs().max().item() for k, g in base["grads"].items())
        print(f"{mode:9s}: held for backward {r['held'] / 2**20:8.1f} MiB ({r['held'] / base['held']:.0%} of "
              f"{modes[0]}), peak {r['peak'] / 2**20:8.1f} MiB, {r['seconds']:6.1f} s; gradients differ from "
              f"{modes[0]}'s by at most {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
