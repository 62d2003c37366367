"""Gradient checkpointing of the UNet blocks, whole or of their convolutional parts only, and a way to measure
what each holds for the backward pass without a GPU.

Each layer of a Show-1 block is a convolutional part (2D resnet and temporal convolutions) followed by an
attention part (spatial attention and temporal transformer). `full` recomputes both from their inputs in the
backward pass (on one H100 a VMC step took twice as long); `convs` recomputes the convolutional parts only.
Those hold about half of what a plain pass keeps for the backward pass (their norms, activations, dropout
masks and convolution inputs; on a GPU, autocast runs the norms in fp32, so each keeps an fp32 copy of its
input), while the attention parts are not run twice (the temporal attention alone took 28% of a keyframe-UNet
evaluation in an H100 profile). The gradients are those of the plain pass. `bench/activation_memory.py`
measures what the modes hold, `bench/vmc_adaptation.py` their time and peak on a GPU.

PyTorch's selective activation checkpointing (keep the outputs of chosen operations, recompute the rest) was
tried first and dropped: its machinery runs in Python for every operation of the forward pass and of its
recomputation, about 45 µs per forward operation on a 2-core CPU, and a forward pass of show-1-base has about
7,000 operations, so on a GPU it would likely cost more time than it spares; it also held more (62% of the plain
pass's memory against 50% for `convs`).
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode

MODES = ("none", "convs", "full")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"gradient_checkpointing {mode!r}: one of {', '.join(MODES)}")
    return mode


def set_gradient_checkpointing(unet, mode: str):
    """'none', 'convs' (the blocks' convolutional parts recomputed from their inputs) or 'full' (every part), on
    a UNet whose blocks checkpoint through diffusers' `enable_gradient_checkpointing`."""
    check_mode(mode)
    blocks = [block for block in unet.modules() if hasattr(block, "checkpoint_attention")]
    if mode != "none" and not getattr(unet, "_supports_gradient_checkpointing", False):
        raise ValueError(f"gradient_checkpointing {mode!r}: {type(unet).__name__} does not support gradient "
                         "checkpointing (diffusers' UNet3DConditionModel does not): use 'none'")
    if mode == "convs" and not blocks:
        raise ValueError(f"gradient_checkpointing 'convs' needs Show-1's blocks, which {type(unet).__name__} does not "
                         "have: use 'full'")
    for block in blocks:
        block.checkpoint_attention = mode != "convs"
    if mode != "none":
        unet.enable_gradient_checkpointing()
    elif getattr(unet, "is_gradient_checkpointing", False):  # any model trains with none, a diffusers one or not
        unet.disable_gradient_checkpointing()


class LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of the tensors that operations inside it create and that are still alive (per storage,
    as an allocator counts them), and their peak: what a checkpointing mode holds, measurable on a CPU. The
    storages of `ignore` (the weights: views of them share their storage) are not counted."""

    def __init__(self, ignore=()):
        super().__init__()
        self.live = self.peak = 0
        self._seen = {t.untyped_storage()._cdata for t in ignore}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage()._cdata not in self._seen:
                storage = t.untyped_storage()  # one Python object per storage for as long as the storage lives
                self._seen.add(storage._cdata)
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, storage._cdata, storage.nbytes())
        return out

    def _free(self, key: int, nbytes: int):
        self._seen.discard(key)
        self.live -= nbytes
