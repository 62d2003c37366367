"""Sparse-causal spatial attention (Tune-A-Video): frame i's pixel keys/values come from frames 0 and i−1
instead of frame i itself (frame 0 uses frame 0 twice, as the official code does). Two attention kinds have it:
the IF-style attention of the Show-1 pixel UNets, where the text keys/values (`add_k_proj`/`add_v_proj`) come
first and stay as they are, and the spatial transformers' self-attention (`attn1`) of ModelScope / ZeroScope
UNets, as in the official code on Stable Diffusion's (their cross-attention, `attn2`, stays as it is). A
model-level switch, so an adapter trained with it (adapter.json `"attention": "sparse-causal"`) is generated
with it too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention


def sparse_causal_indices(num_frames: int) -> tuple[list[int], list[int]]:
    """For every frame, the frames its keys/values come from: (first frame, previous frame)."""
    return [0] * num_frames, [max(i - 1, 0) for i in range(num_frames)]


class SparseCausalAddedKVProcessor:
    """Attention processor for IF-style attention (text K/V added to pixel K/V) with sparse-causal pixel K/V.

    The hidden states arrive as (B·F, C, H, W); `num_frames` is set before each UNet call (enable_sparse_causal
    installs a hook for it)."""

    def __init__(self):
        self.num_frames = 1

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **_) -> torch.Tensor:
        residual = hidden_states
        bf, c = hidden_states.shape[:2]
        x = hidden_states.view(bf, c, -1).transpose(1, 2)
        if encoder_hidden_states is None:
            encoder_hidden_states = x
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
        query = attn.head_to_batch_dim(attn.to_q(x), out_dim=4)
        key = attn.head_to_batch_dim(attn.add_k_proj(encoder_hidden_states), out_dim=4)
        value = attn.head_to_batch_dim(attn.add_v_proj(encoder_hidden_states), out_dim=4)
        if not attn.only_cross_attention:
            f = self.num_frames
            first, previous = sparse_causal_indices(f)

            def sparse(proj):  # (B·F, heads, N, d) of frames 0 and i−1, side by side for frame i
                t = attn.head_to_batch_dim(proj(x), out_dim=4)
                t = t.reshape(bf // f, f, *t.shape[1:])
                return torch.cat([t[:, first], t[:, previous]], dim=3).flatten(0, 1)

            key = torch.cat([key, sparse(attn.to_k)], dim=2)
            value = torch.cat([value, sparse(attn.to_v)], dim=2)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(bf, -1, c)
        out = attn.to_out[1](attn.to_out[0](out))
        return out.transpose(-1, -2).reshape(residual.shape) + residual


class SparseCausalSelfProcessor:
    """Attention processor for a spatial transformer's self-attention over tokens (B·F, N, C), with keys/values
    from frames 0 and i−1; `num_frames` is set as for SparseCausalAddedKVProcessor."""

    def __init__(self):
        self.num_frames = 1

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, **_) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None or attn.group_norm is not None \
                or attn.spatial_norm is not None or hidden_states.ndim != 3:
            raise ValueError("sparse-causal self-attention takes plain token self-attention only")
        bf = hidden_states.shape[0]
        f = self.num_frames
        first, previous = sparse_causal_indices(f)

        def heads(t):  # (B·F, N, heads·d) → (B·F, heads, N, d)
            return t.unflatten(-1, (attn.heads, -1)).transpose(1, 2)

        def sparse(proj):  # keys/values of frames 0 and i−1, side by side along the tokens, for frame i
            t = proj(hidden_states).unflatten(0, (bf // f, f))
            return heads(torch.cat([t[:, first], t[:, previous]], dim=2).flatten(0, 1))

        out = F.scaled_dot_product_attention(heads(attn.to_q(hidden_states)), sparse(attn.to_k), sparse(attn.to_v),
                                             dropout_p=0.0, is_causal=False)
        out = attn.to_out[1](attn.to_out[0](out.transpose(1, 2).flatten(2)))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def enable_sparse_causal(unet) -> list:
    """Make every spatial self-attention of a Show-1 or ModelScope-style UNet sparse-causal (idempotent); returns
    the processors."""
    processors = []
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and ".attentions." in f".{name}" and "temp_attentions" not in name:
            kind = SparseCausalAddedKVProcessor if module.add_k_proj is not None else SparseCausalSelfProcessor
            if kind is SparseCausalSelfProcessor and module.is_cross_attention:
                continue  # the text cross-attention keeps its keys and values
            if not isinstance(module.processor, kind):
                module.set_processor(kind())
            processors.append(module.processor)
    if not processors:
        raise ValueError(f"{type(unet).__name__} has no spatial attention to make sparse-causal")
    if not getattr(unet, "_sparse_causal_hook", None):
        def set_frames(_module, args, kwargs):
            sample = args[0] if args else kwargs["sample"]
            for p in processors:
                p.num_frames = sample.shape[2]
        unet._sparse_causal_hook = unet.register_forward_pre_hook(set_frames, with_kwargs=True)
    return processors
