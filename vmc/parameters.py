"""Which UNet parameters an adaptation trains.

`qkv` is the official VMC choice: every linear layer whose module name contains `temp_attentions` and ends
with `.to_q`, `.to_k` or `.to_v` (both temporal self-attentions of every temporal transformer). `qkvo` adds
their output projections; `temporal` trains every temporal-attention parameter (ablations). `tav` is
Tune-A-Video's choice: the spatial attention's query projections and the whole temporal attention.
`self_qkv` is VMC's choice on a video diffusion transformer, which has no separate temporal attention: the q/k/v
projections of every block's self-attention `attn1` (Wan: over the video tokens; CogVideoX: over text and video
tokens jointly), nothing of the cross-attention `attn2` or the feed-forward.
"""

from __future__ import annotations

import re

from torch import nn



def _module(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0]


RULES = {  # parameter name → trained?
    "qkv": lambda n: "temp_attentions" in n and _module(n).endswith((".to_q", ".to_k", ".to_v")),
    "qkvo": lambda n: "temp_attentions" in n and _module(n).endswith((".to_q", ".to_k", ".to_v", ".to_out.0")),
    "temporal": lambda n: "temp_attentions" in n,
    "self_qkv": lambda n: re.fullmatch(r"transformer\.(transformer_)?blocks\.\d+\.attn1\.to_[qkv]\.(weight|bias)", n) is not None,
    "tav": lambda n: "temp_attentions" in n or (".attentions." in f".{n}" and _module(n).endswith(".to_q")),
}


def select_parameters(model: nn.Module, rule: str = "qkv") -> dict[str, nn.Parameter]:
    """Freeze everything, unfreeze what `rule` selects; returns {parameter name: parameter} of the trained ones."""
    if rule not in RULES:
        raise ValueError(f"unknown parameter rule '{rule}' (rules: {', '.join(RULES)})")
    model.requires_grad_(False)
    selected = {name: p for name, p in model.named_parameters() if RULES[rule](name)}
    if not selected:
        raise ValueError(f"parameter rule '{rule}' selects nothing in {type(model).__name__}")
    for p in selected.values():
        p.requires_grad_(True)
    return selected
