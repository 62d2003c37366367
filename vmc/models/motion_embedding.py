"""MotionInversion's motion embeddings (Wang et al., 2024) on the temporal transformer blocks of a video UNet.

A temporal transformer block (diffusers' BasicTransformerBlock over frames) sees tokens (B·h·w, F, C), one
sequence of F frames per spatial position, and runs two self-attentions, `attn1` and `attn2`. On a block:
- the query-key embedding, F × C, is added to the input of both attentions' query and key projections (the
  official `pos_embed`: one per block, shared by both attentions), so it shapes the attention over frames;
- the value embedding, h·w × F × C for each attention, is added to the input of that attention's value
  projection at every position (the official `vSpatial`).
Both start at zero, so the UNet is unchanged until they are trained. With `frame_differences` on (sampling), the
value embedding enters as its differences between consecutive frames, frame 0 kept as it is: the official
inference's debiasing for object motion, which keeps what changes from frame to frame and drops what is common
to all frames (the appearance).

The embeddings are the parameters of a `MotionEmbedding` registered on the block as `motion_embedding`, and they
enter through forward pre-hooks on the projections: no class of the library is changed.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

ATTENTIONS = ("attn1", "attn2")


class MotionEmbedding(nn.Module):
    def __init__(self, frames: int, positions: int, channels: int):
        super().__init__()
        self.query_key = nn.Parameter(torch.zeros(frames, channels))
        self.value = nn.ParameterDict({a: nn.Parameter(torch.zeros(positions, frames, channels)) for a in ATTENTIONS})
        self.frame_differences = False

    def attach(self, block: nn.Module):
        """Register on `block` and hook into its attentions' projections."""
        block.motion_embedding = self
        for a in ATTENTIONS:
            attention = getattr(block, a)
            attention.to_q.register_forward_pre_hook(self._add_query_key)
            attention.to_k.register_forward_pre_hook(self._add_query_key)
            attention.to_v.register_forward_pre_hook(partial(self._add_value, a))

    def _check(self, x: torch.Tensor):
        positions, frames = self.value[ATTENTIONS[0]].shape[:2]
        if x.shape[1] != frames or x.shape[0] % positions:
            raise ValueError(f"motion embeddings for {frames} frames at {positions} positions cannot take "
                             f"{x.shape[1]} frames at {x.shape[0]} positions: sample at the size they were trained at")

    def _add_query_key(self, _projection, args):
        (x,) = args
        self._check(x)
        return (x + self.query_key,)

    def _add_value(self, attention: str, _projection, args):
        (x,) = args
        self._check(x)
        value = self.value[attention]
        if self.frame_differences:
            value = torch.cat([value[:, :1], value[:, 1:] - value[:, :-1]], dim=1)
        return ((x.unflatten(0, (-1, value.shape[0])) + value).flatten(0, 1),)


@torch.no_grad()
def positions_seen(unet: nn.Module, blocks: list[str], height: int, width: int, text: torch.Tensor) -> dict[str, int]:
    """How many spatial positions each named block sees when the UNet samples at height × width: measured by one
    forward pass of a single frame, rather than assumed from the UNet's downsampling."""
    modules, seen = dict(unet.named_modules()), {}

    def record(name, _block, args):
        seen[name] = args[0].shape[0]  # tokens (positions, frames, channels) of the one sample

    hooks = [modules[name].register_forward_pre_hook(partial(record, name)) for name in blocks]
    try:
        sample = torch.zeros(1, unet.config.in_channels, 1, height, width, device=text.device, dtype=unet.dtype)
        unet(sample, 0, text.to(unet.dtype))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def add_motion_embeddings(unet: nn.Module, blocks: list[str], frames: int, height: int, width: int,
                          text: torch.Tensor) -> dict[str, MotionEmbedding]:
    """Zero motion embeddings on the named temporal transformer blocks, for `frames` frames sampled at height ×
    width (`text`: any prompt embedding the UNet takes, for measuring the positions). Returns {block name: its
    MotionEmbedding}."""
    modules = dict(unet.named_modules())
    positions = positions_seen(unet, blocks, height, width, text)
    added = {}
    for name in blocks:
        block = modules[name]
        embedding = MotionEmbedding(frames, positions[name], block.attn1.to_q.in_features)
        embedding.to(device=block.attn1.to_q.weight.device, dtype=block.attn1.to_q.weight.dtype).attach(block)
        added[name] = embedding
    return added
