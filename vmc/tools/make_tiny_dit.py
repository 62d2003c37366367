"""python -m vmc.tools.make_tiny_dit DIR [--layout wan|cogvideox] [--official-size]

Write a random video diffusion transformer with diffusers' and transformers' stock classes, saved by the stock
pipeline's `save_pretrained` (WanPipeline, CogVideoXPipeline) in the layout of the hub repos (model_index.json, transformer/, vae/, text_encoder/,
tokenizer/, scheduler/) plus cascade.json with tiny sizes. `wan`: WanTransformer3DModel, AutoencoderKLWan,
UMT5EncoderModel, FlowMatchEulerDiscreteScheduler (flow shift 3.0); `cogvideox`: CogVideoXTransformer3DModel,
AutoencoderKLCogVideoX, T5EncoderModel, CogVideoXDDIMScheduler (THUDM/CogVideoX-2b's scheduler config). Tiny: 2
blocks of 2 heads, 4-level VAEs (8× in space, 4× in time), 2-layer text encoders over a word-level tokenizer, 9
frames at 32×32: every method runs on it on a CPU in seconds. With --official-size, the transformer and VAE at
the published sizes (Wan 2.1 T2V 1.3B; CogVideoX-2B) in fp16 for timing on a GPU (bench/methods.py); the text
encoder keeps the published width (4096) with 2 layers and the tiny vocabulary, since it runs once per prompt.
The weights are random: nothing it draws means anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eval.errors import cli_main
from vmc.pipelines.text import word_tokenizer
from vmc.tools.make_tiny_cascade import WORDS

TEXT = 32  # tiny text width
# THUDM/CogVideoX-2b's scheduler_config.json
COGVIDEOX_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                           clip_sample=False, set_alpha_to_one=True, steps_offset=0, prediction_type="v_prediction",
                           rescale_betas_zero_snr=True, snr_shift_scale=3.0, timestep_spacing="trailing")
TINY_SETTINGS = dict(num_frames=9, height=32, width=32, text_length=16, keep_models=True)
SIZES = {  # layout → size → (transformer, VAE, text encoder width/ff/heads, cascade.json settings)
    "wan": {
        "tiny": (dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=TEXT,
                      freq_dim=16),
                 dict(base_dim=8, dim_mult=[1, 2, 4, 4], num_res_blocks=1),
                 dict(d_model=TEXT, d_ff=64, num_heads=4), TINY_SETTINGS),
        "official": (dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30, text_dim=4096,
                          freq_dim=256), {}, dict(d_model=4096, d_ff=10240, num_heads=64), {}),
    },
    "cogvideox": {
        "tiny": (dict(num_attention_heads=2, attention_head_dim=8, num_layers=2, text_embed_dim=TEXT,
                      time_embed_dim=16, sample_width=4, sample_height=4, sample_frames=9, max_text_seq_length=16),
                 dict(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4, sample_height=32,
                      sample_width=32),
                 dict(d_model=TEXT, d_ff=64, num_heads=4), {**TINY_SETTINGS, "fps": 8.0, "keyframe_guidance": 6.0}),
        "official": (dict(num_attention_heads=30, attention_head_dim=64, num_layers=30, text_embed_dim=4096), {},
                     dict(d_model=4096, d_ff=10240, num_heads=64), {}),
    },
}
NAMES = {("wan", "tiny"): "tiny-wan", ("wan", "official"): "wan2.1-random",
         ("cogvideox", "tiny"): "tiny-cogvideox", ("cogvideox", "official"): "cogvideox-random"}


def make(root: Path, layout: str = "wan", seed: int = 0, size: str = "tiny") -> Path:
    from diffusers import (AutoencoderKLCogVideoX, AutoencoderKLWan, CogVideoXDDIMScheduler, CogVideoXPipeline,
                           CogVideoXTransformer3DModel, FlowMatchEulerDiscreteScheduler, WanPipeline,
                           WanTransformer3DModel)
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    transformer, vae, text, settings = SIZES[layout][size]
    torch.manual_seed(seed)

    wan = layout == "wan"
    tokenizer = word_tokenizer(WORDS)
    config_cls, encoder_cls = (UMT5Config, UMT5EncoderModel) if wan else (T5Config, T5EncoderModel)
    encoder = encoder_cls(config_cls(vocab_size=len(tokenizer), d_kv=8 if size == "tiny" else 64, num_layers=2,
                                     **text))
    if wan:
        parts = dict(vae=AutoencoderKLWan(**vae), transformer=WanTransformer3DModel(**transformer),
                     scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    else:
        parts = dict(vae=AutoencoderKLCogVideoX(latent_channels=16, temporal_compression_ratio=4, **vae),
                     transformer=CogVideoXTransformer3DModel(**transformer),
                     scheduler=CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULER))
    if size == "official":  # the published weights are 16-bit
        encoder, parts["vae"], parts["transformer"] = encoder.half(), parts["vae"].half(), parts["transformer"].half()
    # the stock pipeline writes model_index.json and every part, as the hub repos were written
    (WanPipeline if wan else CogVideoXPipeline)(tokenizer=tokenizer, text_encoder=encoder, **parts).save_pretrained(root)
    meta = {"name": NAMES[layout, size], "settings": settings}
    (root / "cascade.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.tools.make_tiny_dit", description=__doc__.split("\n\n")[1])
    p.add_argument("dir", type=Path)
    p.add_argument("--layout", choices=("wan", "cogvideox"), default="wan")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--official-size", action="store_true",
                   help="the published transformer and VAE sizes, fp16 (Wan 1.3B about 3 GB, CogVideoX-2B about 4 GB)")
    args = p.parse_args(argv)
    make(args.dir, args.layout, args.seed, "official" if args.official_size else "tiny")
    print(f"random {args.layout}-layout model written to {args.dir}")


if __name__ == "__main__":
    main()
