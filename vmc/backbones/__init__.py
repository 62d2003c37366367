"""The backbones every method samples through: one abstract pipeline (base.py), one file per kind (show1.py:
the Show-1 cascade; latent.py: ModelScope / ZeroScope), and the names a user gives them (profiles.py,
profiles.json). docs/ARCHITECTURE.md says how to add a kind."""

from vmc.backbones.base import KINDS, Backbone, BackbonePipeline, SamplingSettings, Source, to_uint8
from vmc.backbones.profiles import DEFAULT_CACHE, PROFILES, SHAPES_DIR, resolve_backbone, tiny_dir

__all__ = ["DEFAULT_CACHE", "KINDS", "PROFILES", "SHAPES_DIR", "Backbone", "BackbonePipeline", "SamplingSettings",
           "Source", "resolve_backbone", "tiny_dir", "to_uint8"]
