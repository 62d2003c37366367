"""Which UNet parameters an adaptation trains.

`qkv` is the official VMC choice: every linear layer whose module name contains `temp_attentions` and ends
with `.to_q`, `.to_k` or `.to_v` (both temporal self-attentions of every temporal transformer). `qkvo` adds
their output projections; `temporal` trains every temporal-attention parameter (ablations).
"""

from __future__ import annotations

from torch import nn

RULES = {
    "qkv": lambda name: "temp_attentions" in name and name.endswith((".to_q", ".to_k", ".to_v")),
    "qkvo": lambda name: "temp_attentions" in name and name.endswith((".to_q", ".to_k", ".to_v", ".to_out.0")),
    "temporal": lambda name: "temp_attentions" in name,
}


def select_parameters(model: nn.Module, rule: str = "qkv") -> dict[str, nn.Parameter]:
    """Freeze everything, unfreeze what `rule` selects; returns {parameter name: parameter} of the trained ones."""
    if rule not in RULES:
        raise ValueError(f"unknown parameter rule '{rule}' (rules: {', '.join(RULES)})")
    model.requires_grad_(False)
    chosen = RULES[rule]
    selected = {}
    for module_name, module in model.named_modules():
        if rule == "temporal":
            if not chosen(module_name) or any(True for _ in module.children()):
                continue
        elif not (isinstance(module, nn.Linear) and chosen(module_name)):
            continue
        for param_name, param in module.named_parameters(recurse=False):
            param.requires_grad_(True)
            selected[f"{module_name}.{param_name}"] = param
    if not selected:
        raise ValueError(f"parameter rule '{rule}' selects nothing in {type(model).__name__}")
    return selected
