"""What every backbone kind shares: where its weights come from (`Source`), what it is (`Backbone`), its
settings' common names (`SamplingSettings`) and the pipeline every method samples through (`BackbonePipeline`).

A method reaches a backbone only through the calls `BackbonePipeline` declares, so one recipe runs on every kind.
A kind is one file holding a subclass (vmc/backbones/show1.py, latent.py) and one line naming it in `KINDS`
below, or, from a package outside the project, an entry point in the group `vmc_suite.backbones`
(`my-kind = my_package.module:MyPipeline`). A model folder is recognised by the `_class_name` of its
`model_index.json`, as diffusers recognises a pipeline, which each kind lists in `model_index_classes`.
"""

from __future__ import annotations

import gc
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from eval.errors import UserError, read_json
from eval.registry import Registry

STAGE_SOURCES = ("base", "interpolation", "sr1", "if_sr", "sr2")  # Backbone's model folders, in fingerprint order
FIRST_KIND = "show1"  # run folders and adapters record `backbone_kind` for every other kind (they predate kinds)


@dataclass
class Source:
    """Where one model folder comes from: a hub repo id (with revision) or a local directory."""

    path: str
    revision: str | None = None
    variant: str | None = None  # weights variant published on the hub (e.g. fp16), used when loading in fp16

    def kwargs(self) -> dict:
        return {"revision": self.revision} if self.revision else {}

    def fingerprint(self) -> list:
        """What identifies these weights, for caches and run folders of work done with them: for a local
        directory, each file's path, size and a hash of its first and last MiB (a retrained model differs there;
        a reinstall of the same files does not), so that replacing the weights under the same name is noticed;
        for a hub id, the id and revision."""
        root = Path(self.path)
        if not root.is_dir():
            return [self.path, self.revision]
        return [[str(f.relative_to(root)), f.stat().st_size, _ends_digest(f)]
                for f in sorted(root.rglob("*")) if f.is_file()]


def _ends_digest(path: Path, chunk: int = 2**20) -> str:
    """sha256 of the first and last `chunk` bytes (the whole file when it is shorter than two chunks)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(chunk)
        f.seek(max(size - chunk, len(head)))
        return hashlib.sha256(head + f.read()).hexdigest()[:16]


@dataclass
class SamplingSettings:
    """The settings every kind has, under the names the methods read: those of the first (keyframe) stage, which
    is the whole video for a one-stage kind. The defaults are Show-1's; a kind redeclares the fields whose
    published defaults differ and adds its own."""

    num_frames: int = 8
    height: int = 40
    width: int = 64
    keyframe_steps: int = 75
    keyframe_guidance: float = 9.0
    # keyframe guidance when sampling starts from a DDIM-inverted clip (vmc, tav, inversion): None keeps
    # keyframe_guidance (Show-1: the official VMC samples at 9.0 either way); a small backbone may need more to
    # override the appearance the inverted noise carries
    inverted_keyframe_guidance: float | None = None
    negative_prompt: str = ""
    # keep each stage's UNet loaded between videos (small models: shapes, tiny) instead of loading it per video
    # and releasing it after (what lets Show-1's stages take turns on a 24 GB GPU)
    keep_models: bool = False


@dataclass
class Backbone:
    """A backbone: its kind (a name in `KINDS`), its model folders and settings, and per adapting method the
    settings its folder's cascade.json gives. A one-stage kind has only `base`, the whole pipeline folder."""

    base: Source
    interpolation: Source | None = None
    sr1: Source | None = None
    if_sr: Source | None = None  # without it SR1's first window conditions on its own upscaled frame
    sr2: Source | None = None
    name: str = "custom"
    settings: SamplingSettings | None = None  # None: the kind's defaults
    adaptation: dict = field(default_factory=dict)  # per method ("vmc", …): TrainConfig fields, inversion_steps
    training: dict = field(default_factory=dict)  # how the weights were trained (cascade.json), e.g. held-out motions
    # its stages come from several places (a copy of show-1-base with its siblings or the hub), so run.json and
    # adapter.json say which
    assembled: bool = False
    kind: str = FIRST_KIND
    layout: str = ""  # which of its kind's model layouts, for a kind of several (the DiT kind: "wan", "cogvideox")

    def __post_init__(self):
        if self.settings is None:
            self.settings = self.pipeline_class.settings_class()

    @property
    def pipeline_class(self) -> type[BackbonePipeline]:
        return KINDS.get(self.kind)

    def pipeline(self, device, dtype=None) -> BackbonePipeline:
        """The sampler of this backbone, of its kind's class."""
        return self.pipeline_class(self, device, dtype)

    def adaptation_for(self, method: str) -> dict:
        return dict(self.adaptation.get(method, {}))

    def fingerprint(self) -> str:
        """One digest of every model folder's Source.fingerprint: a run folder records it, so that videos from
        other weights under the same backbone name are not mixed into it."""
        sources = [getattr(self, k) for k in STAGE_SOURCES]
        return hashlib.sha256(json.dumps([s and s.fingerprint() for s in sources]).encode()).hexdigest()[:16]

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this backbone has, in order."""
        return self.pipeline_class.stages_of(self)


def folder_backbone(kind: type[BackbonePipeline], sources: dict[str, Source], root: Path) -> Backbone:
    """A backbone of `kind` from model folders found under `root`, with root/cascade.json's name, settings
    ("settings": the kind's settings fields), training record ("training") and, per adapting method ("vmc",
    "tav", …), {TrainConfig fields, inversion_steps}."""
    path = root / "cascade.json"
    meta = read_json(path) if path.is_file() else {}
    try:
        settings = kind.settings_class(**meta.get("settings", {}))
    except TypeError as e:
        raise UserError(f"{path}: {e}") from None
    return Backbone(**sources, name=meta.get("name", root.name), settings=settings, kind=kind.kind,
                    adaptation={k: v for k, v in meta.items()
                                if isinstance(v, dict) and k not in ("settings", "training")},
                    training=meta.get("training", {}))


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] → uint8 F×H×W×3."""
    x = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


def load_part(cls, source: Source, subfolder: str, dtype: torch.dtype, **kw):
    """cls.from_pretrained of one part of a model folder, with one clear line for missing, gated or unreachable
    weights (the weights variant, e.g. fp16, when loading in fp16)."""
    if source.variant and dtype == torch.float16 and "torch_dtype" in kw:
        kw["variant"] = source.variant
    try:
        return cls.from_pretrained(source.path, subfolder=subfolder, **source.kwargs(), **kw)
    except (OSError, ValueError) as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ""
        if "gated" in str(e).lower() or "401" in str(e) or "403" in str(e):
            hint = " — the repository is gated: accept its licence on the hub, then `huggingface-cli login`"
        elif not Path(source.path).exists():
            hint = " — hub weights download once on a machine with network access (then they are cached)"
        raise UserError(f"cannot load {source.path}/{subfolder}: {text}{hint}") from None


class BackbonePipeline(ABC):
    """The sampler of one backbone kind: every call a recipe may make.

    A subclass declares what the kind is (`kind`, `description`, `settings_class`, `known_stages`,
    `model_index_classes`, `from_dir`) and implements its model calls: `unet_class` and `scheduler_class` (what
    `load_unet`, `stage_unet`, `load_scheduler` load, e.g. for a DDIM inversion with the backbone's own
    schedule), `encode_prompts` (the text encoder; `text_embeddings` caches it), `encode` (pixels to what the
    UNet denoises), `sample_size`, `fps`, and `run` (every stage, the first one through `sample_keyframes`, which
    takes the adapted UNet, a starting latent and a guidance hook). The base keeps each prompt's embedding once
    per pipeline and a stage's UNet loaded or released after each video (`keep_models`)."""

    kind: str  # the name it is registered under, recorded in run.json and adapter.json as backbone_kind
    description: str  # what it is, in words, for messages: "a Show-1 cascade"
    layout: str  # the model folders it loads, in words, for the message listing accepted layouts
    settings_class: type[SamplingSettings] = SamplingSettings
    known_stages: tuple[str, ...] = ()  # what --stages may name (a backbone has some of them: stages_of)
    model_index_classes: tuple[str, ...] = ()  # the model_index.json `_class_name`s of folders of this kind
    reads_unindexed_folders = False  # from_dir also reads folders without a model_index.json (Show-1's layout)
    pixels = False  # the first stage samples pixels (its result clamped to [-1, 1]), not latents

    def __init__(self, backbone: Backbone, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        self.backbone = backbone
        self.settings = backbone.settings
        self.device = torch.device(device)
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self._embeds: dict[str, torch.Tensor] = {}
        self._kept: dict[str, torch.nn.Module] = {}

    # what the kind is -------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_dir(cls, root: Path, note) -> Backbone:
        """The backbone a local folder of this kind's layout holds, or a UserError naming what it lacks; `note`
        receives a line worth telling the user (where each stage comes from, when from several places)."""

    @classmethod
    def check_parts(cls, root: Path, parts: tuple[str, ...]):
        """One line naming what of `parts` (files and folders of this kind's layout) `root` lacks."""
        missing = [part for part in parts if not (root / part).exists()]
        if missing:
            raise UserError(f"{root}: {cls.description} lacks {', '.join(missing)} ({cls.layout})")

    @classmethod
    def from_profile(cls, name: str, sources: dict[str, Source], profile: dict) -> Backbone:
        """The backbone a hub profile of profiles.json names: its model folders and its settings over the kind's
        defaults."""
        return Backbone(**sources, name=name, settings=cls.settings_class(**profile.get("settings", {})), kind=cls.kind)

    @classmethod
    def stages_of(cls, backbone: Backbone) -> tuple[str, ...]:
        """The stages `backbone` has, in order (default: every known stage)."""
        return cls.known_stages

    # model calls ------------------------------------------------------------------------------------------
    @abstractmethod
    def unet_class(self):
        """The class of the denoiser, loaded from a model folder's unet/."""

    @abstractmethod
    def scheduler_class(self):
        """The class of the first stage's noise scheduler."""

    @abstractmethod
    def encode_prompts(self, prompts: list[str]) -> list[torch.Tensor]:
        """Each prompt's text embedding, without a batch dimension."""

    @abstractmethod
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """What the first stage's UNet denoises, of a clip (B, 3, F, H, W) in [-1, 1]."""

    @property
    @abstractmethod
    def sample_size(self) -> tuple[int, int]:
        """The height and width of what the first stage's UNet denoises, at the settings' frame size."""

    @abstractmethod
    def fps(self, stage: str) -> float:
        """The frame rate of a stage's video."""

    @abstractmethod
    def run(self, prompt: str, seed: int = 0, stages=None, init_latents=None, keyframe_unet=None,
            guidance=None) -> dict:
        """{stage: (B, 3, F, H, W) in [-1, 1]} up to the last of `stages` (default: every stage the backbone has).
        `keyframe_unet`: the first stage's UNet as a method adapted it; `init_latents`: its starting latents (an
        inversion); `guidance`: a vmc.families.guidance.Guidance steering its sampling."""

    # shared -----------------------------------------------------------------------------------------------
    def text_embeddings(self, prompts: list[str]) -> list[torch.Tensor]:
        """(1, tokens, dim) embeddings of prompts, each computed once per pipeline."""
        todo = [p for p in dict.fromkeys(prompts) if p not in self._embeds]
        if todo:
            self._embeds.update(zip(todo, self.encode_prompts(todo)))
        return [self._embeds[p][None] for p in prompts]

    def sample_keyframes(self, prompt: str, seed: int, init_latents=None, unet=None, guidance=None) -> torch.Tensor:
        """The first stage's sample (pixels or latents) with the settings' frames, steps and guidance scale (the
        inverted one when starting from an inversion), with `unet` (default: the backbone's own)."""
        from vmc.pipelines.keyframes import KeyframeSampler

        s = self.settings
        text, negative = self.text_embeddings([prompt, s.negative_prompt])
        own = unet is None
        unet = unet or self.stage_unet(self.backbone.base)
        cfg = s.keyframe_guidance
        if init_latents is not None and s.inverted_keyframe_guidance is not None:
            cfg = s.inverted_keyframe_guidance
        height, width = self.sample_size
        sampler = KeyframeSampler(unet, self.load_scheduler(self.backbone.base), pixels=self.pixels)
        out = sampler(text, negative, self.sample_frames, height, width, s.keyframe_steps, cfg,
                      generator=torch.Generator(self.device).manual_seed(seed), init_latents=init_latents,
                      guidance=guidance)
        if own:
            self.done_with(unet)
        return out

    def check_stages(self, stages) -> None:
        """One line for a stage the kind does not know or this backbone lacks."""
        have = self.backbone.stages
        if set(stages) - set(self.known_stages):
            raise UserError(f"backbone {self.backbone.name} has {'one stage,' if len(have) == 1 else 'the stages'} "
                            f"{', '.join(have)} (asked for {', '.join(stages)})")
        lacking = set(stages) - set(have)
        if lacking:
            raise UserError(f"backbone {self.backbone.name} has no {', '.join(sorted(lacking))} stage "
                            f"(it has {', '.join(have)})")

    def _load(self, cls, source: Source, subfolder: str, **kw):
        return load_part(cls, source, subfolder, self.dtype, **kw)

    def load_unet(self, source: Source):
        return self._load(self.unet_class(), source, "unet", torch_dtype=self.dtype).to(self.device).eval()

    def load_scheduler(self, source: Source, subfolder: str = "scheduler", cls=None):
        return self._load(cls or self.scheduler_class(), source, subfolder)

    def inversion_scheduler(self, schedule: str, base_config: dict):
        """The DDIM scheduler that inverts a clip (vmc.inversion: the backbone's own schedule, or `sd15`, the
        official VMC code's); a ValueError names a schedule the kind does not take."""
        from vmc.inversion import inversion_scheduler

        return inversion_scheduler(schedule, base_config)

    @property
    def sample_frames(self) -> int:
        """The frames the first stage's UNet denoises: the settings' frames (a kind whose VAE compresses time
        says how many latent frames they make)."""
        return self.settings.num_frames

    def stage_unet(self, source: Source):
        """A stage's own UNet: loaded once and kept with `keep_models`, else loaded for this video only."""
        if not self.settings.keep_models:
            return self.load_unet(source)
        if source.path not in self._kept:
            self._kept[source.path] = self.load_unet(source)
        return self._kept[source.path]

    def done_with(self, unet):
        if not self.settings.keep_models:
            self.release(unet)

    def release(self, *modules):
        for m in modules:
            if hasattr(m, "to"):
                m.to("cpu")
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


# The backbone kinds: one line per kind of this project; other packages register theirs as entry points.
KINDS = Registry("backbone kind", "vmc_suite.backbones", BackbonePipeline, {
    "show1": "vmc.backbones.show1:Show1Cascade",
    "latent": "vmc.backbones.latent:LatentVideoPipeline",
    "dit": "vmc.backbones.dit:DiTPipeline",
}, name_attr="kind")
