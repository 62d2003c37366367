"""VMC adaptation speed: training steps of the keyframe UNet (batch 1, 8×40×64, the official qkv selection,
AdamW, clipping) with random weights in fp16 (as the method loads the hub's checkpoint) and the real
show-1-base config, side by side for each mixed-precision mode, each way of computing the temporal attention
(vmc/models/short_attention.py) and each gradient-checkpointing mode (vmc/models/checkpointing.py).

    python bench/vmc_adaptation.py [--steps 20] [--modes fp16,bf16] [--temporal-attention sdpa,short]
                                   [--checkpointing none,convs,full] [--frozen-weights 16bit,fp32] [--tiny]

Anchor (official code, one H100, fp16 autocast over fp32 weights): 283 ms per step (113 s for 400 steps),
17.95 GiB peak for the UNet alone. Targets: ≤ 95 ms per step, ≤ 8 GiB. --tiny runs a tiny config on the CPU
(a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest.mock import patch

import torch
from diffusers import DDPMScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cascade import unet_configs  # noqa: E402
from bench.methods import cpu_threads, peak_gb, settle  # noqa: E402
from bench.unet_keyframes import SIZE, build  # noqa: E402
from vmc import trainer  # noqa: E402
from vmc.configs import load_config  # noqa: E402
from vmc.models.checkpointing import MODES as CHECKPOINTING  # noqa: E402
from vmc.models.short_attention import set_temporal_attention  # noqa: E402


STORE_WEIGHTS = trainer.store_weights


def fp32_weights(unet, trained, amp):
    """Every weight in fp32 under autocast, as before vmc.trainer.store_weights (the official code's layout)."""
    STORE_WEIGHTS(unet, trained, None)


def step_time(config: dict, device, steps: int, mode: str = "fp16", kind: str = "sdpa", checkpointing: str = "none",
              store_weights: bool = True, size=SIZE, warm_up: int = 2) -> dict:
    """Seconds per VMC training step of a random UNet of `config` (built in fp16 on a GPU, as the method loads
    the hub's checkpoint; fp32 on a CPU) after `warm_up` steps, with `mode` autocast on a GPU (none on a CPU),
    the temporal attention computed by `kind`, `checkpointing`, and the frozen weights stored in 16 bits
    (`store_weights`) or all in fp32; and the peak GPU memory in GiB (None on a CPU)."""
    cuda = torch.device(device).type == "cuda"
    scheduler = DDPMScheduler.from_config(load_config("show1-base-scheduler"))
    g = torch.Generator().manual_seed(0)
    video = (torch.rand(1, 3, *size, generator=g) * 2 - 1).to(device)
    text = torch.randn(1, 77, config["encoder_hid_dim"], generator=g).to(device)
    unet = build(config, device, torch.float16 if cuda else torch.float32)
    set_temporal_attention(unet, kind)
    settle(device)
    train = lambda n: trainer.train_motion(unet, video, text, scheduler, trainer.TrainConfig(  # noqa: E731
        steps=n, mixed_precision=mode if cuda else "no", gradient_checkpointing=checkpointing), progress=False)
    with patch.object(trainer, "store_weights", STORE_WEIGHTS if store_weights else fp32_weights):
        train(warm_up)
        settle(device)
        t0 = time.perf_counter()
        result = train(steps)
        settle(device)
    return {"step_s": (time.perf_counter() - t0) / steps, "peak_gib": peak_gb(device),
            "loss": (result["history"][0], result["history"][-1])}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--modes", default="fp16,bf16")
    p.add_argument("--temporal-attention", default="sdpa,short")
    p.add_argument("--checkpointing", default="none,convs,full")
    p.add_argument("--frozen-weights", default="16bit", help="16bit (vmc.trainer.store_weights), fp32 (as the "
                   "official code), or both: 16bit,fp32")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    if not set(args.temporal_attention.split(",")) <= {"sdpa", "short"}:
        p.error(f"--temporal-attention {args.temporal_attention!r}: each kind is 'sdpa' or 'short'")
    if not set(args.checkpointing.split(",")) <= set(CHECKPOINTING):
        p.error(f"--checkpointing {args.checkpointing!r}: each mode is one of {', '.join(CHECKPOINTING)}")
    if not set(args.frozen_weights.split(",")) <= {"16bit", "fp32"}:
        p.error(f"--frozen-weights {args.frozen_weights!r}: each is '16bit' or 'fp32'")
    cuda = torch.cuda.is_available() and not args.tiny
    dev = torch.device("cuda" if cuda else "cpu")
    cpu_threads(dev)
    config = unet_configs(args.tiny)["keyframes"]
    print(f"device {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
          f"{'tiny' if args.tiny else 'show-1-base'} config, {args.steps} steps")
    for mode, kind, ckpt, weights in [(m, k, c, w) for m in args.modes.split(",")
                                      for k in args.temporal_attention.split(",")
                                      for c in args.checkpointing.split(",") for w in args.frozen_weights.split(",")]:
        r = step_time(config, dev, args.steps, mode, kind, ckpt, weights == "16bit")
        peak = r["peak_gib"] if r["peak_gib"] is not None else float("nan")
        print(f"{mode:5s} {kind:5s} checkpointing {ckpt:5s} frozen weights {weights:5s}: "
              f"{r['step_s'] * 1e3:8.1f} ms/step → {r['step_s'] * 400:6.1f} s for 400 steps; peak {peak:.2f} GiB; loss {r['loss'][0]:.4f} → {r['loss'][1]:.4f}", flush=True)
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
