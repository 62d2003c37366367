"""python -m vmc.tools.make_tiny_cascade DIR

Write a complete random cascade at tiny sizes in the hub layout (show-1-base/, show-1-interpolation/,
show-1-sr1/, IF-II-L-v1.0/, show-1-sr2/, each with unet/, scheduler/ …, a tiny T5 encoder and tokenizer,
a tiny VAE and CLIP text encoder for SR2) plus cascade.json, the settings scaled to the tiny sizes. For
tests and for trying the pipeline with no downloads: it runs end to end on a CPU in seconds. Written to the user
cache's tiny-cascade/ ($VMC_CACHE, default ~/.cache/vmc-suite), it is the backbone profile `tiny`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eval.errors import cli_main
from vmc.configs import load_config
from vmc.pipelines.text import word_tokenizer

T5_DIM = 32
CLIP_DIM = 32
WORDS = ("a an the is are to of in on at red blue green yellow white black orange purple circle square triangle "
         "star bear bird car shark dog cat panda tiger moving walking flying falling running left right up down "
         "background low resolution blur , .").split()
SHOW1_SMALL = dict(attention_head_dim=32, cross_attention_dim=64, encoder_hid_dim=T5_DIM,
                   addition_embed_type_num_heads=4, norm_num_groups=16, layers_per_block=1)
TINY_SETTINGS = dict(height=16, width=24, sr2_height=128, sr2_width=192, keep_models=True)


def _clip_tokenizer(folder: Path):
    """A real CLIPTokenizer over a tiny BPE vocabulary (characters and whole words)."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted(set("".join(WORDS)) | set("abcdefghijklmnopqrstuvwxyz.,"))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return len(vocab)


def _model_index(folder: Path, cls: str, components: dict):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": cls, **components}, indent=2))


def make(root: Path, seed: int = 0):
    from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from vmc.models import Show1UNet3D

    torch.manual_seed(seed)
    base_cfg = load_config("show1-base-unet")
    pixel_unet = {**base_cfg, **SHOW1_SMALL, "block_out_channels": [32, 32, 64, 64], "sample_size": 16}
    t5_components = {"text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"]}
    dpm = DPMSolverMultistepScheduler.from_config(load_config("show1-base-scheduler"))
    ddpm = DDPMScheduler(beta_schedule="squaredcos_cap_v2", variance_type="learned_range", thresholding=True,
                         sample_max_value=1.5, dynamic_thresholding_ratio=0.95)
    noising = DDPMScheduler(beta_schedule="squaredcos_cap_v2")

    base = root / "show-1-base"
    _model_index(base, "TextToVideoIFPipeline", {"unet": ["vmc", "Show1UNet3D"], **t5_components})
    tokenizer = word_tokenizer(WORDS)
    vocab = len(tokenizer)
    tokenizer.save_pretrained(base / "tokenizer")
    T5EncoderModel(T5Config(vocab_size=vocab, d_model=T5_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
                   ).save_pretrained(base / "text_encoder")
    Show1UNet3D.from_config(pixel_unet).save_pretrained(base / "unet")
    dpm.save_pretrained(base / "scheduler")

    interp = root / "show-1-interpolation"
    _model_index(interp, "TextToVideoIFInterpPipeline", {"unet": ["vmc", "Show1UNet3D"]})
    Show1UNet3D.from_config({**pixel_unet, "in_channels": 7}).save_pretrained(interp / "unet")
    dpm.save_pretrained(interp / "scheduler")

    sr1 = root / "show-1-sr1"
    _model_index(sr1, "TextToVideoIFSuperResolutionPipeline_Cond", {"unet": ["vmc", "Show1UNet3D"]})
    Show1UNet3D.from_config({**pixel_unet, "in_channels": 6, "class_embed_type": "timestep",
                             "resnet_skip_time_act": True, "resnet_out_scale_factor": 1.4142271248762552,
                             "mid_block_scale_factor": 1.4142271248762552}).save_pretrained(sr1 / "unet")
    dpm.save_pretrained(sr1 / "scheduler")
    noising.save_pretrained(sr1 / "image_noising_scheduler")

    if_sr = root / "IF-II-L-v1.0"
    _model_index(if_sr, "IFSuperResolutionPipeline", {"unet": ["diffusers", "UNet2DConditionModel"]})
    UNet2DConditionModel(
        sample_size=64, in_channels=6, out_channels=6, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=32, cross_attention_dim=64,
        encoder_hid_dim=T5_DIM, class_embed_type="timestep", addition_embed_type="text",
        addition_embed_type_num_heads=4, resnet_time_scale_shift="scale_shift", resnet_skip_time_act=True,
        cross_attention_norm="group_norm", norm_num_groups=16, act_fn="gelu").save_pretrained(if_sr / "unet")
    ddpm.save_pretrained(if_sr / "scheduler")
    noising.save_pretrained(if_sr / "image_noising_scheduler")

    sr2 = root / "show-1-sr2"
    _model_index(sr2, "VideoToVideoSDPipeline", {"unet": ["vmc", "Show1UNet3D"], "vae": ["diffusers", "AutoencoderKL"]})
    clip_vocab = _clip_tokenizer(sr2 / "tokenizer")
    CLIPTextModel(CLIPTextConfig(vocab_size=clip_vocab, hidden_size=CLIP_DIM, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                                 bos_token_id=0, eos_token_id=1, pad_token_id=1)).save_pretrained(sr2 / "text_encoder")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32),
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                  layers_per_block=1, norm_num_groups=16, sample_size=128).save_pretrained(sr2 / "vae")
    Show1UNet3D.from_config({
        **base_cfg, "in_channels": 4, "out_channels": 4, "attention_head_dim": 8, "cross_attention_dim": CLIP_DIM,
        "norm_num_groups": 32, "encoder_hid_dim": None, "encoder_hid_dim_type": None, "addition_embed_type": None,
        "act_fn": "silu", "resnet_time_scale_shift": "default", "cross_attention_norm": None,
        "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"], "up_block_types": ["UpBlock3D",
        "CrossAttnUpBlock3D"], "mid_block_type": "UNetMidBlock3DCrossAttn", "block_out_channels": [32, 64],
        "layers_per_block": 1, "sample_size": 16}).save_pretrained(sr2 / "unet")
    DPMSolverMultistepScheduler.from_config(load_config("show1-sr2-scheduler")).save_pretrained(sr2 / "scheduler")

    (root / "cascade.json").write_text(json.dumps({"name": "tiny", "settings": TINY_SETTINGS}, indent=2) + "\n")
    return root


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.tools.make_tiny_cascade", description=__doc__.split("\n\n")[1])
    p.add_argument("dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    make(args.dir, args.seed)
    print(f"tiny cascade written to {args.dir}")


if __name__ == "__main__":
    main()
