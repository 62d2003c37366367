"""Tune-A-Video's recipe: sparse-causal attention against a direct computation, and exactly its parameters
trained."""

import math

import torch
from diffusers.models.attention_processor import Attention

from unet_reference import tiny_configs
from vmc.models import Show1UNet3D
from vmc.models.sparse_causal import SparseCausalAddedKVProcessor, enable_sparse_causal, sparse_causal_indices
from vmc.parameters import select_parameters


def _unet():
    torch.manual_seed(0)
    return Show1UNet3D.from_config(tiny_configs()["keyframes"]).eval()


def _attention(norm: str | None):
    torch.manual_seed(0)
    return Attention(query_dim=32, cross_attention_dim=32, heads=4, dim_head=8, added_kv_proj_dim=16,
                     cross_attention_norm_num_groups=8,
                     norm_num_groups=8, bias=True, upcast_softmax=True, cross_attention_norm=norm,
                     processor=SparseCausalAddedKVProcessor()).double()


def _direct(attn, x, enc, frames):
    """Frame by frame, in float64: keys/values are the text tokens, then the pixels of frames 0 and i−1."""
    bf, c, h, w = x.shape
    tokens = attn.group_norm(x.reshape(bf, c, -1)).transpose(1, 2)
    if attn.norm_cross:
        enc = attn.norm_encoder_hidden_states(enc)
    out = torch.empty_like(x)
    heads, d = attn.heads, c // attn.heads
    split = lambda t: t.reshape(t.shape[0], heads, d).transpose(0, 1)  # noqa: E731  (heads, N, d)
    for b in range(bf // frames):
        for i in range(frames):
            n = b * frames + i
            first, prev = b * frames, b * frames + max(i - 1, 0)
            q = split(attn.to_q(tokens[n]))
            k = torch.cat([split(attn.add_k_proj(enc[n])), split(attn.to_k(tokens[first])), split(attn.to_k(tokens[prev]))], 1)
            v = torch.cat([split(attn.add_v_proj(enc[n])), split(attn.to_v(tokens[first])), split(attn.to_v(tokens[prev]))], 1)
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), -1) @ v  # heads, N, d
            y = attn.to_out[0](a.transpose(0, 1).reshape(-1, c))
            out[n] = y.T.reshape(c, h, w) + x[n]
    return out


def test_sparse_causal_indices_follow_the_official_rule():
    assert sparse_causal_indices(4) == ([0, 0, 0, 0], [0, 0, 1, 2])


def test_sparse_causal_attention_matches_direct_computation():
    for norm in (None, "group_norm"):
        attn = _attention(norm)
        frames = 5
        x = torch.randn(2 * frames, 32, 4, 6, dtype=torch.float64)
        enc = torch.randn(2 * frames, 7, 16, dtype=torch.float64)
        attn.processor.num_frames = frames
        with torch.no_grad():
            got = attn(x, encoder_hidden_states=enc)
            want = _direct(attn, x, enc, frames)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_enable_sparse_causal_sets_frames_from_the_sample():
    unet = _unet()
    processors = enable_sparse_causal(unet)
    assert processors and enable_sparse_causal(unet) == processors  # idempotent
    x = torch.randn(1, unet.config.in_channels, 3, 8, 8)
    with torch.no_grad():
        unet(x, torch.tensor([10]), torch.randn(1, 5, unet.config.encoder_hid_dim))
    assert {p.num_frames for p in processors} == {3}


def test_tav_rule_selects_spatial_queries_and_all_temporal_attention():
    unet = _unet()
    selected = select_parameters(unet, "tav")
    names = [n for n, _ in unet.named_parameters()]
    temporal = {n for n in names if "temp_attentions" in n}
    queries = {n for n in names if ".attentions." in f".{n}" and "temp_attentions" not in n and ".to_q." in n}
    assert temporal and queries
    assert set(selected) == temporal | queries
    assert all(p.requires_grad == (n in selected) for n, p in unet.named_parameters())
