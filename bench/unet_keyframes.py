"""Keyframe-stage UNet speed: one evaluation with a classifier-free-guidance batch of 2 at 8×40×64, the real
show-1-base config with random weights, eager fp16 / bf16 vs torch.compile, outputs compared with eager fp16;
the temporal attention computed by each of `--temporal-attention` (vmc/models/short_attention.py), side by side.

    python bench/unet_keyframes.py [--steps 75] [--compile-mode default|max-autotune-no-cudagraphs|none]
                                   [--temporal-attention sdpa,short]

(On an H100, max-autotune-no-cudagraphs was still autotuning this model after 8 minutes, and the default mode
had not finished compiling after about 2.5 minutes.)

Anchor (official code, diffusers 0.19.3, one H100): 110 ms per evaluation, 8.2 s for 75 steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cascade import unet_configs  # noqa: E402
from vmc.models import Show1UNet3D  # noqa: E402
from vmc.models.short_attention import set_temporal_attention  # noqa: E402

SIZE = (8, 40, 64)  # keyframes × height × width of Show-1's keyframe stage


def timed(fn, iters: int, device) -> float:
    """Seconds per call of `fn`, after 3 calls that warm up."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else lambda: None
    for _ in range(3):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def build(config: dict, device, dtype: torch.dtype) -> Show1UNet3D:
    """A random UNet of `config`, initialised on `device` (random init of 1.73 B parameters on a CPU takes
    longer than the measuring)."""
    torch.manual_seed(0)
    with torch.device(device):
        return Show1UNet3D.from_config(config).to(dtype).eval()


def inputs(config: dict, device, size=SIZE) -> tuple:
    """A classifier-free-guidance batch of 2: the noisy keyframes, their timesteps, the T5 text embeddings."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(2, 3, *size, device=device, generator=g)
    text = torch.randn(2, 77, config["encoder_hid_dim"], device=device, generator=g)
    return x, torch.tensor([500, 500], device=device), text


def evaluation(model, kind: str, dtype: torch.dtype, batch: tuple, iters: int) -> tuple[float, torch.Tensor]:
    """Seconds per evaluation of `model` in `dtype` with its temporal attention computed by `kind`, and its
    output."""
    set_temporal_attention(model, kind)
    x, t, text = batch
    m = model.to(dtype=dtype)
    with torch.inference_mode():
        run = lambda: m(x.to(dtype), t, text.to(dtype)).sample  # noqa: E731
        return timed(run, iters, x.device), run().float()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=75)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--compile-mode", default="default", help="torch.compile mode, or 'none'")
    p.add_argument("--temporal-attention", default="sdpa,short", help="temporal attention kinds to compare; the "
                   "first is the reference, bf16 and the compiled model use the fastest")
    args = p.parse_args()
    kinds = args.temporal_attention.split(",")
    if not set(kinds) <= {"sdpa", "short"}:
        p.error(f"--temporal-attention {args.temporal_attention!r}: each kind is 'sdpa' or 'short'")
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = torch.device("cuda")
    config = unet_configs(tiny=False)["keyframes"]
    model = build(config, dev, torch.float16)
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
    batch = inputs(config, dev)
    x, t, text = batch
    results = {}

    def measure(kind: str, dtype: torch.dtype):
        key = f"{str(dtype)[6:]} {kind}"
        results[key] = evaluation(model, kind, dtype, batch, args.iters)
        print(f"eager {key:15s}: {results[key][0] * 1e3:7.1f} ms/eval, "
              f"{results[key][0] * args.steps:5.2f} s for {args.steps} steps", flush=True)

    for kind in kinds:
        measure(kind, torch.float16)
    fastest = min(kinds, key=lambda k: results[f"float16 {k}"][0])  # for bf16 and the compiled model
    measure(fastest, torch.bfloat16)
    ref = results[f"float16 {kinds[0]}"][1]
    for key, (_, out) in results.items():
        print(f"{key} vs float16 {kinds[0]}: max |Δ| = {((out - ref).abs().max() / ref.abs().max()).item():.2e} "
              "of max |out|")
    if args.compile_mode != "none":
        set_temporal_attention(model, fastest)
        m = model.to(dev, torch.float16)
        compiled = torch.compile(m, mode=args.compile_mode)
        with torch.inference_mode():
            run = lambda: compiled(x.half(), t, text.half()).sample  # noqa: E731
            t0 = time.perf_counter()
            out = run().float()
            print(f"compile time: {time.perf_counter() - t0:.0f} s")
            dt = timed(run, args.iters, dev)
        err = ((out - ref).abs().max() / ref.abs().max()).item()
        print(f"compiled fp16 {fastest}: {dt * 1e3:7.1f} ms/eval, {dt * args.steps:5.2f} s for {args.steps} steps; "
              f"max |Δ| vs eager fp16 {kinds[0]} = {err:.2e} of max |out|")
    print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
