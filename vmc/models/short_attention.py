"""Attention over a few tokens written out as two batched products and a softmax.

Show-1's temporal attention attends over the 8 frames of each pixel, in 64 heads of C/64 channels (5 at the
keyframe UNet's top level): hundreds of thousands of 8×8 problems. Fused SDPA kernels tile queries in blocks
of 64 or more and pad each head to 8 channels or more, so most of their work there is padding, while the
8×8 score matrices written out are no larger than the queries themselves. Numerically it is the same
attention (softmax in fp32, as the fused kernels compute it); `bench/unet_keyframes.py` compares the two.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0


class ShortSequenceAttnProcessor:
    """Self- or cross-attention without masks, norms inside the attention or residual connection (the plain
    `Attention` of a diffusers transformer block), for sequences short enough to hold every score."""

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **_) -> torch.Tensor:
        if attention_mask is not None:
            raise ValueError("ShortSequenceAttnProcessor takes no attention mask")
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        n, s, _ = hidden_states.shape
        heads = attn.heads

        def split(t):  # (n, tokens, heads·d) -> (n, heads, tokens, d)
            return t.view(n, t.shape[1], heads, -1).transpose(1, 2)

        query = split(attn.to_q(hidden_states) * attn.scale)
        key, value = split(attn.to_k(context)), split(attn.to_v(context))
        weights = self.probabilities(query @ key.transpose(-1, -2)).to(value.dtype)
        out = (weights @ value).transpose(1, 2).reshape(n, s, -1)
        return attn.to_out[1](attn.to_out[0](out))

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """(n, heads, queries, keys) attention probabilities, in fp32 or wider (vmc.models.features reads them)."""
        return scores.to(torch.promote_types(scores.dtype, torch.float32)).softmax(-1)


def supports_short_attention(attn: Attention) -> bool:
    """Whether `attn` is the plain attention ShortSequenceAttnProcessor computes exactly."""
    return (attn.spatial_norm is None and attn.group_norm is None and attn.norm_q is None and attn.norm_k is None
            and not attn.norm_cross and not attn.residual_connection and attn.rescale_output_factor == 1.0
            and attn.add_k_proj is None)


def set_temporal_attention(unet, kind: str) -> int:
    """Compute every temporal-transformer attention of a Show-1-style UNet with `kind` ("short": this module's
    processor; "sdpa": diffusers' fused default). Returns how many attentions were set."""
    if kind not in ("short", "sdpa"):
        raise ValueError(f"temporal attention {kind!r}: expected 'short' or 'sdpa'")
    count = 0
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and "temp_attentions" in name:
            if kind == "short" and not supports_short_attention(module):
                raise ValueError(f"{name}: not a plain attention; the short-sequence processor does not apply")
            module.set_processor(ShortSequenceAttnProcessor() if kind == "short" else AttnProcessor2_0())
            count += 1
    if not count:
        raise ValueError(f"{type(unet).__name__} has no temporal attention")
    return count
