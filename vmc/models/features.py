"""Reading a UNet's inner features during one forward pass, with gradients: the attention probabilities of named
attention modules and the outputs of named modules (what training-free guidance compares with a reference).

Everything is set up for the duration of one call and undone in `finally`: the forward hooks are removed and each
named attention gets its own processor object back, so the model's parameters, buffers, modules, hooks and
processors are as before. The probabilities come from a temporary ShortSequenceAttnProcessor (the attention
written out), so only plain attentions (the temporal transformers' attn1 and attn2) can be read. The forward
pass stops as soon as every requested feature has been read: the rest of the UNet would be computed for nothing
(DMT's official code likewise cuts off the decoder blocks after the one it reads).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention

from vmc.models.short_attention import ShortSequenceAttnProcessor, supports_short_attention


class _AllRead(Exception):
    """Every requested feature has been read: the rest of the forward pass is skipped."""


class _RecordingProcessor(ShortSequenceAttnProcessor):
    def __init__(self, name: str, record):
        self.name, self.record = name, record

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        probs = super().probabilities(scores)
        self.record(self.name, probs)
        return probs


class UNetFeatures:
    """`features(sample, timestep, text)` → {name: tensor}: for each of `attention_probs` its probabilities
    (B·H·W, heads, F, F) for a temporal attention, for each of `outputs` that module's output as it returns it."""

    def __init__(self, unet: torch.nn.Module, attention_probs=(), outputs=()):
        modules = dict(unet.named_modules())
        unknown = [n for n in (*attention_probs, *outputs) if n not in modules]
        if unknown:
            raise ValueError(f"{type(unet).__name__} has no module {', '.join(unknown)}")
        for name in attention_probs:
            if not isinstance(modules[name], Attention) or not supports_short_attention(modules[name]):
                raise ValueError(f"{name}: not a plain attention, its probabilities cannot be read")
        self.unet = unet
        self.attention = {n: modules[n] for n in attention_probs}
        self.outputs = {n: modules[n] for n in outputs}

    def __call__(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor) -> dict:
        found: dict[str, torch.Tensor] = {}
        wanted = len(self.attention) + len(self.outputs)

        def record(name, value):
            found[name] = value
            if len(found) == wanted:
                raise _AllRead

        originals, hooks = {}, []
        try:
            for name, attn in self.attention.items():
                originals[name] = attn.processor
                attn.set_processor(_RecordingProcessor(name, record))
            for name, module in self.outputs.items():
                hooks.append(module.register_forward_hook(lambda _m, _args, out, name=name: record(name, out)))
            try:
                self.unet(sample, timestep, encoder_hidden_states)
            except _AllRead:
                pass
        finally:
            for hook in hooks:
                hook.remove()
            for name, processor in originals.items():
                self.attention[name].set_processor(processor)
        if len(found) < wanted:
            missed = sorted({*self.attention, *self.outputs} - set(found))
            raise RuntimeError(f"the forward pass did not run {', '.join(missed)}")
        return found
