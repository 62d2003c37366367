"""The cascade family: methods that sample the backbone's text-to-video cascade, named `name[:BACKBONE]` in
`eval.run` (default: the shapes world), and `t2v`, the unadapted cascade from pure noise (the lower bound for
motion).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from eval.manifest import Case
from eval.methods import Method
from eval.video import Video
from vmc.backbones.base import FIRST_KIND

DEFAULT_BACKBONE = "shapes"


class CascadeMethod(Method):
    """Resolves the backbone, loads its cascade when first needed, and records the cascade's settings and
    weights in `info()`."""

    takes_argument = True
    compute_bound = True
    unsupported_kinds: dict = {}  # {backbone kind: why the recipe has no port to it}, refused in one line
    options = ("default_backbone", "cache")

    def __init__(self, arg: str | None = None, device: str | None = None, default_backbone: str | None = None,
                 cache: Path | None = None):
        """`default_backbone` (default: the shapes world) where `arg` names none; `cache`: the user cache that
        holds the tiny models (vmc.backbones.resolve_backbone)."""
        super().__init__(arg, device)
        from vmc.backbones import resolve_backbone

        self.backbone = resolve_backbone(arg or default_backbone or DEFAULT_BACKBONE, cache=cache)
        if self.backbone.kind in self.unsupported_kinds:
            from eval.errors import UserError

            raise UserError(f"{self.name} on backbone {self.backbone.name}: {self.unsupported_kinds[self.backbone.kind]}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._cascade = None
        self.configured: dict = {}  # settings chosen over the backbone's (configure(); the families that have any)

    def default_label(self) -> str:
        return self.name if self.arg is None else f"{self.name}-{self.backbone.name}"

    @property
    def cascade(self):
        """The backbone's sampler (a vmc.backbones.BackbonePipeline of its kind)."""
        if self._cascade is None:
            self._cascade = self.backbone.pipeline(self.device)
        return self._cascade

    def info(self) -> dict:
        """With every cascade setting and the weights' digest, so that a run directory refuses videos made with
        other settings or other weights."""
        return {**super().info(), "backbone": self.backbone.name, **self.kind_record(),
                "weights": self.backbone.fingerprint(),
                "settings": dataclasses.asdict(self.backbone.settings), **self.sources_record(),
                **({"configured": self.configured} if self.configured else {})}

    def kind_record(self) -> dict:
        """{"backbone_kind": KIND} for every kind but Show-1's cascade, which records nothing, so that run folders
        and adapters made before a second kind existed stay as they were; a kind of several layouts (the DiT
        kind: Wan or CogVideoX) records the layout too."""
        layout = {"backbone_layout": self.backbone.layout} if self.backbone.layout else {}
        return {"backbone_kind": self.backbone.kind, **layout} if self.backbone.kind != FIRST_KIND else {}

    def sources_record(self) -> dict:
        """{"sources": where each stage comes from} for a backbone assembled from several places, else {}: a
        profile or a cascade directory is named by itself, and run folders recorded before this key stay resumable."""
        from vmc.backbones.show1 import sources

        return {"sources": sources(self.backbone)} if self.backbone.assembled else {}

    def _video(self, outputs: dict) -> Video:
        from vmc.backbones import to_uint8

        last = list(outputs)[-1]
        return Video(to_uint8(outputs[last][0]), self.cascade.fps(last))


class T2VMethod(CascadeMethod):
    name = "t2v"

    def info(self) -> dict:
        return {**super().info(), "trained_parameters": 0}

    def adapt(self, case: Case):
        self.cascade.text_embeddings([*case.target_prompts, self.backbone.settings.negative_prompt])  # one encoder load
        return None

    def generate(self, state, prompt: str, seed: int) -> Video:
        return self._video(self.cascade.run(prompt, seed))

    def protocol(self, state) -> dict:
        return {"trained_parameters": 0, "train_s": 0.0}
