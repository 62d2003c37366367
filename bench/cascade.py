"""Whole-cascade speed and peak memory per prompt: keyframes → interpolation → SR1 → SR2 with the official
settings (75 / 75 / 125 / 50 steps, 8 → 29 frames, 40×64 → 160×256 → 320×576), random weights at the published
sizes, fp16, each stage's model built before its stage and freed after it, as the cascade does.

    python bench/cascade.py [--compile] [--temporal-attention sdpa|short] [--tiny]

Sizes: show-1-base and show-1-sr1 from their published configs (vmc/configs); interpolation = base with 7 input
channels. SR2's UNet config is not in the stored hub copies: it is built at ModelScope / ZeroScope size (the
model Show-1's SR2 starts from: 320-640-1280-1280 channels, 1024-d CLIP text), with an SD-sized VAE. Left out:
the T5-XXL and CLIP prompt encodings (random embeddings stand in: one encoder call per prompt) and SR1's first
frame by DeepFloyd IF-II-L (its config is not stored here either; without it the first SR1 window conditions on
its own upscaled frame). --tiny runs tiny widths on the CPU: a smoke test of this script, not a measurement.

Targets (issue 3): the whole cascade ≤ 60 s per prompt on one H100.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.methods import cpu_threads, peak_gb, settle  # noqa: E402
from vmc.backbones.show1 import CascadeSettings  # noqa: E402
from vmc.configs import load_config  # noqa: E402
from vmc.models import Show1UNet3D  # noqa: E402

MODELSCOPE = dict(in_channels=4, out_channels=4, act_fn="silu", attention_head_dim=64, cross_attention_dim=1024,
                  block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, norm_num_groups=32,
                  down_block_types=["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
                  up_block_types=["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3, mid_block_type="UNetMidBlock3DCrossAttn",
                  encoder_hid_dim=None, encoder_hid_dim_type=None, addition_embed_type=None,
                  resnet_time_scale_shift="default", cross_attention_norm=None, class_embed_type=None,
                  resnet_skip_time_act=False, resnet_out_scale_factor=1.0, mid_block_scale_factor=1)
TINY = dict(attention_head_dim=16, norm_num_groups=16, layers_per_block=1, addition_embed_type_num_heads=2,
            cross_attention_dim=32)


def unet_configs(tiny: bool) -> dict:
    base = load_config("show1-base-unet")
    sr1 = load_config("show1-sr1-unet")
    sr2 = {**base, **MODELSCOPE}
    if tiny:
        base = {**base, **TINY, "block_out_channels": [32, 32, 64, 64], "encoder_hid_dim": 32}
        sr1 = {**sr1, **TINY, "block_out_channels": [32, 32, 32, 64, 64], "encoder_hid_dim": 32}
        sr2 = {**sr2, **TINY, "block_out_channels": [32, 32, 64, 64]}
    return {"keyframes": base, "interp": {**base, "in_channels": 7}, "sr1": sr1, "sr2": sr2}


TINY_SETTINGS = CascadeSettings(height=8, width=16, sr2_height=32, sr2_width=64, keyframe_steps=2, interp_steps=2,
                                sr1_steps=2, sr2_steps=3)


def run(tiny: bool, settings: CascadeSettings, device, dtype: torch.dtype, kind: str = "sdpa",
        compile: bool = False, report=lambda line: None) -> dict:
    """One prompt through the four stages, each stage's UNet (random weights at the published or tiny sizes,
    its temporal attention computed by `kind`) built before its stage and freed after it. Returns per stage its seconds,
    parameters (millions), peak GPU memory (GiB; None on a CPU) and output shape; `report` gets a line per
    stage as it ends (and per compiled stage's warm-up)."""
    from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, VideoToVideoSDPipeline
    from diffusers.utils import logging
    from PIL import Image

    from vmc.backbones import to_uint8
    from vmc.models.short_attention import set_temporal_attention
    from vmc.pipelines.interpolation import InterpolationSampler
    from vmc.pipelines.keyframes import KeyframeSampler
    from vmc.pipelines.super_resolution import PixelSRSampler

    logging.set_verbosity_error()
    dev, s, configs = torch.device(device), settings, unet_configs(tiny)
    t5_dim, clip_dim = configs["keyframes"]["encoder_hid_dim"], configs["sr2"]["cross_attention_dim"]
    g = torch.Generator(dev).manual_seed(0)
    text, negative = (torch.randn(1, 77, t5_dim, generator=g, device=dev, dtype=dtype) for _ in range(2))
    clip_text, clip_negative = (torch.randn(1, 77, clip_dim, generator=g, device=dev, dtype=dtype) for _ in range(2))
    scheduler = lambda: DPMSolverMultistepScheduler.from_config(load_config("show1-base-scheduler"))  # noqa: E731

    def build(stage):
        with torch.device(dev):
            torch.manual_seed(0)
            unet = Show1UNet3D.from_config(configs[stage]).to(dtype).eval()
        set_temporal_attention(unet, kind)
        n = sum(q.numel() for q in unet.parameters()) / 1e6
        return (torch.compile(unet) if compile else unet), n

    def keyframes(unet, _):
        return KeyframeSampler(unet, scheduler())(text, negative, s.num_frames, s.height, s.width, s.keyframe_steps,
                                                  s.keyframe_guidance, generator=torch.Generator(dev).manual_seed(0),
                                                  progress=False)

    def interp(unet, video):
        return InterpolationSampler(unet, scheduler())(video, text, negative, s.interp_new_per_pair, s.interp_steps,
                                                       s.interp_guidance, generator=torch.Generator(dev).manual_seed(0),
                                                       progress=False)

    def sr1(unet, video):
        return PixelSRSampler(unet, scheduler(), DDPMScheduler(beta_schedule="squaredcos_cap_v2"))(
            video, None, text, negative, s.sr1_scale, s.sr1_window, s.sr1_stride, s.sr1_steps, s.sr1_guidance,
            s.sr1_noise_level, seed=0, progress=False)

    with torch.device(dev):
        vae = (AutoencoderKL(block_out_channels=(16, 16, 32, 32), norm_num_groups=16, layers_per_block=1,
                                                  down_block_types=("DownEncoderBlock2D",) * 4,
                                                  up_block_types=("UpDecoderBlock2D",) * 4) if tiny else
               AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2)).to(dtype).eval()

    def sr2(unet, video):
        pipe = VideoToVideoSDPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=
                                      DPMSolverMultistepScheduler.from_config(load_config("show1-sr2-scheduler")))
        pipe.set_progress_bar_config(disable=True)
        frames = [Image.fromarray(f).resize((s.sr2_width, s.sr2_height)) for f in to_uint8(video[0])]
        out = pipe(video=frames, prompt_embeds=clip_text, negative_prompt_embeds=clip_negative,
                   strength=s.sr2_strength, num_inference_steps=s.sr2_steps, guidance_scale=s.sr2_guidance,
                   generator=torch.Generator(dev).manual_seed(0), output_type="pt").frames
        return out.permute(0, 2, 1, 3, 4) * 2 - 1

    results, video = {}, None
    for name, stage in {"keyframes": keyframes, "interp": interp, "sr1": sr1, "sr2": sr2}.items():
        unet, n = build(name)
        settle(dev)
        if compile:
            t0 = time.perf_counter()
            stage(unet, video)
            report(f"  {name}: warm-up with compilation {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        video = stage(unet, video)
        settle(dev)
        results[name] = {"s": time.perf_counter() - t0, "params_m": n, "peak_gib": peak_gb(dev),
                         "shape": tuple(video.shape)}
        r = results[name]
        peak = r["peak_gib"] if r["peak_gib"] is not None else float("nan")
        report(f"{name:9s}: {r['s']:6.1f} s  {n:7.1f} M parameters  peak {peak:5.2f} GiB  → {r['shape']}")
        del unet
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--compile", action="store_true", help="torch.compile each stage's UNet (compile time reported "
                   "apart: a warm-up run per stage)")
    p.add_argument("--temporal-attention", default="sdpa", choices=("sdpa", "short"),
                   help="how every stage's temporal attention is computed (vmc/models/short_attention.py)")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    dev, dtype = (torch.device("cuda"), torch.float16) if cuda else (torch.device("cpu"), torch.float32)
    cpu_threads(dev)
    print(f"device {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
          f"{'tiny' if args.tiny else 'published'} sizes, {'compiled' if args.compile else 'eager'} "
          f"{str(dtype)[6:]}, temporal attention {args.temporal_attention}", flush=True)
    results = run(args.tiny, TINY_SETTINGS if args.tiny else CascadeSettings(), dev, dtype,
                  args.temporal_attention, args.compile, report=lambda line: print(line, flush=True))
    print(f"cascade  : {sum(r['s'] for r in results.values()):6.1f} s per prompt (target ≤ 60 s on one H100)")


if __name__ == "__main__":
    main()
