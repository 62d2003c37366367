"""python -m vmc.tools.make_tiny_zeroscope DIR [--official-size]

Write a random ZeroScope-layout model at tiny sizes in diffusers' TextToVideoSDPipeline layout (model_index.json,
unet/ a UNet3DConditionModel with ZeroScope's block types, vae/, text_encoder/ a CLIP text model, tokenizer/,
scheduler/ ZeroScope's DDIM schedule) plus cascade.json with tiny frame sizes. For tests and for trying the latent
video backbone with no downloads: every method runs on it on a CPU in seconds; written to the user cache's
tiny-zeroscope/ ($VMC_CACHE, default ~/.cache/vmc-suite), it is the backbone profile `tiny-zeroscope`. With --official-size, the same
at ZeroScope's published sizes (UNet3DConditionModel's default configuration, which is ModelScope's; Stable
Diffusion's VAE; OpenCLIP ViT-H's text tower; 24 frames at 576×320), in fp16, for timing on a GPU
(bench/methods.py): its weights are random, so nothing it draws means anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eval.errors import cli_main
from vmc.tools.make_tiny_cascade import CLIP_DIM, _clip_tokenizer, _model_index

# ZeroScope's scheduler (its scheduler_config.json): Stable Diffusion's scaled-linear betas, sampled with DDIM
ZEROSCOPE_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                           clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
# ZeroScope's UNet block types, at tiny widths: temporal attention in up_blocks.1–3 and down_blocks.0–2
UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 16, 32, 32), layers_per_block=1,
            down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
            up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
            cross_attention_dim=CLIP_DIM, attention_head_dim=8, norm_num_groups=8)
TINY_SETTINGS = dict(num_frames=8, height=64, width=64, keep_models=True)
SIZES = {  # (UNet, VAE, CLIP text config, cascade.json settings)
    "tiny": (UNET, dict(block_out_channels=(16, 16, 16, 16), layers_per_block=1, norm_num_groups=8, sample_size=64),
             dict(hidden_size=CLIP_DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
             TINY_SETTINGS),
    "official": ({}, dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512),
                 dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                      hidden_act="gelu"), {}),
}


def make(root: Path, seed: int = 0, size: str = "tiny") -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet, vae, text, settings = SIZES[size]
    torch.manual_seed(seed)

    def save(model, part: str):  # the published weights are fp16
        (model.half() if size == "official" else model).save_pretrained(root / part)

    _model_index(root, "TextToVideoSDPipeline", {
        "unet": ["diffusers", "UNet3DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"]})
    vocab = _clip_tokenizer(root / "tokenizer")
    vocab = vocab if size == "tiny" else 49408  # CLIP's vocabulary size, for the embedding's memory
    save(CLIPTextModel(CLIPTextConfig(vocab_size=vocab, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                      pad_token_id=1, **text)), "text_encoder")
    save(AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                       up_block_types=("UpDecoderBlock2D",) * 4, **vae), "vae")
    save(UNet3DConditionModel(**unet), "unet")
    DDIMScheduler(**ZEROSCOPE_SCHEDULER).save_pretrained(root / "scheduler")
    name = "tiny-zeroscope" if size == "tiny" else "zeroscope-random"
    (root / "cascade.json").write_text(json.dumps({"name": name, "settings": settings}, indent=2) + "\n")
    return root


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.tools.make_tiny_zeroscope", description=__doc__.split("\n\n")[1])
    p.add_argument("dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--official-size", action="store_true", help="ZeroScope's published sizes (fp16, about 3.5 GB)")
    args = p.parse_args(argv)
    make(args.dir, args.seed, "official" if args.official_size else "tiny")
    print(f"random ZeroScope-layout model written to {args.dir}")


if __name__ == "__main__":
    main()
