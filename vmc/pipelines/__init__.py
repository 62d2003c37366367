"""The Show-1 cascade, stage by stage: keyframes → interpolation → pixel SR → latent SR."""

from vmc.pipelines.keyframes import KeyframeSampler
from vmc.pipelines.text import T5PromptEncoder

__all__ = ["KeyframeSampler", "T5PromptEncoder"]
