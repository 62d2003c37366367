"""Adapters on disk: adapter.safetensors (only the trained tensors, keyed by their UNet parameter names) and
adapter.json (base model, selection rule, loss, prompts, steps, seed, loss history, versions).

Both are written atomically, adapter.json last: it marks a finished adapter. Loading checks that the tensors are
whole (vmc/tensor_files.py) and that the base matches: the same UNet configuration (by hash) and every key with its shape.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from eval.errors import UserError, read_json
from eval.results import atomic_write_text
from vmc.tensor_files import load_tensors, save_tensors

FORMAT = "vmc-suite adapter v1"


def config_hash(unet) -> str:
    cfg = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=list).encode()).hexdigest()[:16]


def save_adapter(folder: str | Path, unet, names: list[str], meta: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = dict(unet.named_parameters())
    tensors = {n: params[n].detach().to("cpu", torch.float32).contiguous() for n in names}
    save_tensors(tensors, folder / "adapter.safetensors")
    info = {"format": FORMAT, "unet_config_sha": config_hash(unet),
            "tensors": {n: list(t.shape) for n, t in tensors.items()}, **meta}
    # adapter.json marks a finished adapter (after its tensors): written atomically, a kill never leaves half of it
    atomic_write_text(folder / "adapter.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    return folder


def read_adapter_info(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / "adapter.json"
    if not path.is_file() or not (folder / "adapter.safetensors").is_file():
        raise UserError(f"{folder}: not an adapter (needs adapter.json and adapter.safetensors)")
    info = read_json(path)
    if info.get("format") != FORMAT:
        raise UserError(f"{path}: unknown adapter format {info.get('format')!r}")
    return info


def load_adapter(folder: str | Path, unet) -> dict:
    """Write the adapter's tensors into `unet` after checking it is the base they were trained on."""
    info = read_adapter_info(folder)
    if info["unet_config_sha"] != config_hash(unet):
        raise UserError(f"{folder}: adapter was trained on another base UNet (config {info['unet_config_sha']}, "
                        f"this one {config_hash(unet)}; base: {info.get('base', {}).get('id', '?')})")
    tensors = load_tensors(Path(folder) / "adapter.safetensors")
    params = dict(unet.named_parameters())
    for name, value in tensors.items():
        if name not in params or tuple(params[name].shape) != tuple(value.shape):
            raise UserError(f"{folder}: tensor {name} {tuple(value.shape)} does not fit this UNet")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].dtype))
    return info
