"""VMC adaptation speed: training steps of the keyframe UNet (batch 1, 8×40×64, the official qkv selection,
AdamW, clipping) with random weights in fp16 (as the method loads the hub's checkpoint) and the real
show-1-base config, side by side for each mixed-precision mode, each way of computing the temporal attention
(vmc/models/short_attention.py) and each gradient-checkpointing mode (vmc/models/checkpointing.py).

    python bench/vmc_adaptation.py [--steps 20] [--modes fp16,bf16] [--temporal-attention sdpa,short]
                                   [--checkpointing none,convs,full] [--tiny]

Anchor (official code, one H100, fp16 autocast over fp32 weights): 283 ms per step (113 s for 400 steps),
17.95 GiB peak for the UNet alone. Targets: ≤ 95 ms per step, ≤ 8 GiB. --tiny runs a tiny config on the CPU
(a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from diffusers import DDPMScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmc.configs import load_config  # noqa: E402
from vmc.models import Show1UNet3D  # noqa: E402
from vmc.models.checkpointing import MODES as CHECKPOINTING  # noqa: E402
from vmc.models.short_attention import set_temporal_attention  # noqa: E402
from vmc.trainer import TrainConfig, train_motion  # noqa: E402

TINY = dict(block_out_channels=[32, 32, 64, 64], layers_per_block=1, attention_head_dim=32, cross_attention_dim=64,
            encoder_hid_dim=64, addition_embed_type_num_heads=4, norm_num_groups=16)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--modes", default="fp16,bf16")
    p.add_argument("--temporal-attention", default="sdpa,short")
    p.add_argument("--checkpointing", default="none,convs,full")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    if not set(args.temporal_attention.split(",")) <= {"sdpa", "short"}:
        p.error(f"--temporal-attention {args.temporal_attention!r}: each kind is 'sdpa' or 'short'")
    if not set(args.checkpointing.split(",")) <= set(CHECKPOINTING):
        p.error(f"--checkpointing {args.checkpointing!r}: each mode is one of {', '.join(CHECKPOINTING)}")
    cuda = torch.cuda.is_available() and not args.tiny
    dev = torch.device("cuda" if cuda else "cpu")
    config = {**load_config("show1-base-unet"), **(TINY if args.tiny else {})}
    text_dim = config["encoder_hid_dim"]
    scheduler = DDPMScheduler.from_config(load_config("show1-base-scheduler"))
    g = torch.Generator().manual_seed(0)
    video = (torch.rand(1, 3, 8, 40, 64, generator=g) * 2 - 1).to(dev)
    text = torch.randn(1, 77, text_dim, generator=g).to(dev)
    print(f"device {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
          f"{'tiny' if args.tiny else 'show-1-base'} config, {args.steps} steps")
    for mode, kind, ckpt in [(m, k, c) for m in args.modes.split(",") for k in args.temporal_attention.split(",")
                             for c in args.checkpointing.split(",")]:
        torch.manual_seed(0)
        with dev:  # built on the GPU: random init of 1.73 B parameters on the CPU takes longer than the steps
            unet = Show1UNet3D.from_config(config).to(torch.float16 if cuda else torch.float32)  # as loaded
        set_temporal_attention(unet, kind)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        warm = TrainConfig(steps=2, mixed_precision=mode if cuda else "no", gradient_checkpointing=ckpt)
        train_motion(unet, video, text, scheduler, warm, progress=False)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = train_motion(unet, video, text, scheduler, TrainConfig(
            steps=args.steps, mixed_precision=mode if cuda else "no", gradient_checkpointing=ckpt),
            progress=False)
        if cuda:
            torch.cuda.synchronize()
        per_step = (time.perf_counter() - t0) / args.steps
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        print(f"{mode:5s} {kind:5s} checkpointing {ckpt:9s}: {per_step * 1e3:8.1f} ms/step → "
              f"{per_step * 400:6.1f} s for 400 steps; "
              f"peak {peak:.2f} GiB; loss {result['history'][0]:.4f} → {result['history'][-1]:.4f}", flush=True)
        del unet
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
