"""Selective activation checkpointing of the UNet blocks: keep what is costly to compute, recompute what is not.

Plain gradient checkpointing keeps only each checkpointed part's inputs and recomputes all of its forward pass
in the backward pass (on one H100 a VMC step took twice as long). The selective form keeps the outputs of the
convolutions, matrix products and attention kernels, and recomputes only the cheap operations between them:
group and layer norms, activations, dropout (with the same random draws), autocast's dtype casts, additions.
Much of the memory held for the backward pass is theirs (on a GPU, autocast runs the norms in fp32, so each
keeps an fp32 copy of its input), and their kernels are a small part of the time. The gradients are those of
the plain forward pass. The price is PyTorch's selective-checkpoint machinery, which runs in Python for every
operation of the forward pass and of its recomputation: about 45 µs per forward operation on a 2-core CPU (a
tiny config's training pass with 5,000 operations took 165 ms against 46 ms plain and 101 ms fully
checkpointed), and a forward pass of show-1-base has about 7,000 operations, so on a GPU this may cost more
time than the recomputation it spares. `bench/activation_memory.py` measures the memory of the three ways side
by side, `bench/vmc_adaptation.py` their time and peak on a GPU.
"""

from __future__ import annotations

import weakref
from functools import partial

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

aten = torch.ops.aten
# the operations whose outputs are kept: convolutions, matrix products, and the fused attention kernels of each
# device (the two-product temporal attention of vmc/models/short_attention.py is matrix products)
KEPT = frozenset({
    aten.convolution.default, aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default,
    aten._scaled_dot_product_flash_attention.default, aten._scaled_dot_product_efficient_attention.default,
    aten._scaled_dot_product_cudnn_attention.default, aten._scaled_dot_product_flash_attention_for_cpu.default,
})
MODES = ("none", "selective", "full")


def _policy(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in KEPT else CheckpointPolicy.PREFER_RECOMPUTE


def selective_checkpoint(fn, *args):
    """Run fn(*args) keeping only the outputs of the KEPT operations for the backward pass."""
    return checkpoint(fn, *args, use_reentrant=False, context_fn=partial(create_selective_checkpoint_contexts, _policy))


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"gradient_checkpointing {mode!r}: one of {', '.join(MODES)}")
    return mode


def set_gradient_checkpointing(unet, mode: str):
    """'none', 'selective' or 'full' (every block recomputed from its inputs) on a UNet whose blocks checkpoint
    through diffusers' `enable_gradient_checkpointing`."""
    if check_mode(mode) == "none":
        if getattr(unet, "is_gradient_checkpointing", False):  # any model trains with none, a diffusers one or not
            unet.disable_gradient_checkpointing()
    else:
        unet.enable_gradient_checkpointing(selective_checkpoint if mode == "selective" else None)


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
