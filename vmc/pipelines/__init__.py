"""The stage samplers the backbones run (vmc/backbones): keyframes, interpolation, pixel SR, T5 text."""

from vmc.pipelines.keyframes import KeyframeSampler
from vmc.pipelines.text import T5PromptEncoder

__all__ = ["KeyframeSampler", "T5PromptEncoder"]
