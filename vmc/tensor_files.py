"""The safetensors files of the caches (adapters, inverted clips, guidance references).

Written atomically (a temporary file renamed into place), so that a kill leaves the old file or none, never part
of one, and with a digest of their tensors in the file's metadata; read back with one line naming a file that
is torn or corrupt, which a run then makes again (files written before the digest are read without one).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from eval.errors import UserError

DIGEST = "vmc_suite.sha256"  # the metadata key


class CorruptFile(UserError):
    """A cache file that cannot be read whole, or whose tensors do not match their digest."""


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_tensors(tensors: dict[str, torch.Tensor], path: Path):
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata={DIGEST: digest(tensors)})
    os.replace(tmp, path)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """{name: tensor} of a file `save_tensors` wrote, or CorruptFile naming it."""
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            expected = (f.metadata() or {}).get(DIGEST)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CorruptFile(f"{path}: torn or corrupt ({e})") from None
    if expected is not None and digest(tensors) != expected:
        raise CorruptFile(f"{path}: corrupt (its tensors do not match the digest it was written with)")
    return tensors
