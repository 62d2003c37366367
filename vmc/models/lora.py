"""MotionDirector-style dual-path LoRA on the Show-1 family's keyframe UNet, through `peft`.

Two adapters on disjoint layers: `spatial` on the spatial attention (Show-1's IF-style attention: the pixel
query/key/value and output projections; it has no separate feed-forward; on ModelScope / ZeroScope UNets, as in
the official code, the spatial transformers' self-attention `attn1` and feed-forward) and `temporal` on every temporal
transformer's self-attentions (`attn1`, `attn2`) and feed-forward. A path is switched on or off as a whole.

On a video diffusion transformer (vmc.backbones.dit: no separate temporal layers) the split follows what mixes
frames: only the blocks' self-attention `attn1` does, so it carries the temporal path (q/k/v/out); the spatial
path, trained on one latent frame alone, sits on what acts within a frame or on the text: the cross-attention
`attn2` (Wan; CogVideoX has none, its text joins `attn1`) and the feed-forward.
"""

from __future__ import annotations

from torch import nn

SPATIAL = (r".*(?<!temp_)attentions\.\d+\.((to_q|to_k|to_v|to_out\.0)"  # Show-1: the IF-style attention itself
           r"|transformer_blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.0\.proj|ff\.net\.2))"  # ModelScope
           r"|transformer\.(transformer_)?blocks\.\d+\.(attn2\.(to_q|to_k|to_v|to_out\.0)|ffn?\.net\.0\.proj|ffn?\.net\.2)")  # DiT
TEMPORAL = (r".*temp_attentions\.\d+\.transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.0\.proj|ff\.net\.2)"
            r"|transformer\.(transformer_)?blocks\.\d+\.attn1\.(to_q|to_k|to_v|to_out\.0)")  # DiT
PATHS = {"spatial": SPATIAL, "temporal": TEMPORAL}


def inject_dual_lora(unet: nn.Module, rank: int = 32, alpha: float | None = None) -> dict[str, list[str]]:
    """Add both LoRA paths (B initialised to zero, so the UNet's output is unchanged); freeze everything else.
    Returns the LoRA parameter names of each path."""
    import warnings

    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    for path, pattern in PATHS.items():
        config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=pattern, lora_dropout=0.0,
                            init_lora_weights=True)
        with warnings.catch_warnings():  # two adapters in one model is the point here
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            inject_adapter_in_model(config, unet, adapter_name=path)
    for module in unet.modules():  # injecting activates the last adapter everywhere: each layer gets its own
        if isinstance(module, LoraLayer):
            module.set_adapter(list(module.lora_A))
    unet.requires_grad_(False)
    names = lora_names(unet)
    for path, found in names.items():
        if not found:
            raise ValueError(f"no layer of {type(unet).__name__} matches the {path} LoRA targets")
    return names


def lora_names(unet: nn.Module) -> dict[str, list[str]]:
    """The LoRA parameter names of each path."""
    return {path: sorted(n for n, _ in unet.named_parameters() if f".lora_A.{path}." in n or f".lora_B.{path}." in n)
            for path in PATHS}


def set_lora_path(unet: nn.Module, path: str, enabled: bool):
    """Switch one LoRA path on or off (its layers then compute the base projection only)."""
    from peft.tuners.lora import LoraLayer

    for module in unet.modules():
        if isinstance(module, LoraLayer) and path in module.lora_A:
            module.enable_adapters(enabled)
