"""Tiny Show-1 UNet configs (the three block structures at reduced width) and deterministic weights.

tests/data/show1_unet_reference.safetensors holds, for each config here, inputs and the outputs that the
official Show-1 implementation (showlab/Show-1 `showone/models`, diffusers 0.19.3, fp32, CPU) computed with
the weights `deterministic_state_dict` gives; tests/data/show1_unet_shapes.json lists every state-dict key and
shape of the official model built from the published show-1-base config and from each tiny config.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data"


def base_config() -> dict:
    from vmc.configs import load_config

    return load_config("show1-base-unet")


SMALL = dict(attention_head_dim=32, cross_attention_dim=64, encoder_hid_dim=96, addition_embed_type_num_heads=8,
             norm_num_groups=16, sample_size=16)


def tiny_configs() -> dict[str, dict]:
    base = base_config()
    keyframes = {**base, **SMALL, "block_out_channels": [32, 64, 64, 128], "layers_per_block": 2}
    sr1 = {**base, **SMALL, "in_channels": 6, "class_embed_type": "timestep",
           "down_block_types": ["ResnetDownsampleBlock3D"] * 3 + ["SimpleCrossAttnDownBlock3D"] * 2,
           "up_block_types": ["SimpleCrossAttnUpBlock3D"] * 2 + ["ResnetUpsampleBlock3D"] * 3,
           "block_out_channels": [32, 32, 64, 64, 64], "layers_per_block": [1, 1, 2, 1, 1],
           "resnet_skip_time_act": True, "resnet_out_scale_factor": 1.4142271248762552,
           "mid_block_scale_factor": 1.4142271248762552}
    # 32 groups: the official ModelScope blocks' temporal convs always use 32 (every published config does)
    modelscope = {**base, "attention_head_dim": 8, "cross_attention_dim": 64, "norm_num_groups": 32,
                  "encoder_hid_dim": None, "encoder_hid_dim_type": None, "addition_embed_type": None,
                  "act_fn": "silu", "resnet_time_scale_shift": "default", "cross_attention_norm": None,
                  "in_channels": 4, "out_channels": 4, "transfromer_in_opt": True,
                  "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
                  "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
                  "mid_block_type": "UNetMidBlock3DCrossAttn", "block_out_channels": [32, 64, 64],
                  "layers_per_block": 2}
    return {"keyframes": keyframes, "sr1": sr1, "modelscope": modelscope}


def deterministic_state_dict(shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Weights that depend only on each key and shape: matrices ~ N(0, 1/fan_in), vectors 1 + N(0, 0.1²)
    for norm scales and N(0, 0.1²) otherwise. Nothing is zero, so every parameter shows in the output."""
    out = {}
    for key, shape in shapes.items():
        g = torch.Generator().manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
        x = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
        if len(shape) >= 2:
            x = x / (torch.tensor(shape[1:]).prod().double().sqrt())
        elif "norm" in key and key.endswith("weight"):
            x = 1 + 0.1 * x
        else:
            x = 0.1 * x
        out[key] = x.float()
    return out


def inputs(config: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    text_dim = config["encoder_hid_dim"] or config["cross_attention_dim"]
    unit = 2 ** (len(config["block_out_channels"]) - 1)  # the official upsamplers need divisible sizes
    x = {"sample": torch.randn(2, config["in_channels"], 3, 2 * unit, 3 * unit, generator=g),
         "timestep": torch.tensor([17, 803]),
         "encoder_hidden_states": torch.randn(2, 5, text_dim, generator=g)}
    if config.get("class_embed_type") == "timestep":
        x["class_labels"] = torch.tensor([250, 100])
    return x
