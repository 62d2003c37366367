"""The Show-1 cascade: keyframes → interpolation → pixel SR (SR1) → latent video-to-video SR (SR2).

A backbone is five model folders in the hub layout (unet/, scheduler/, text_encoder/, …): the three
Show-1 pixel stages, DeepFloyd IF-II-L (SR1's first frame) and the latent SR2 model. Stages load one at a
time and are released after use, so a 24 GB GPU runs the whole cascade; the T5 embeddings are computed
once by the base model's encoder and shared by every T5 stage. Defaults are the official settings
(RECIPES.md); the T5 stages use an empty negative prompt and SR2 "low resolution, blur", as the official
code does.
"""

from __future__ import annotations

import gc
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vmc.progress import shown

STAGES = ("keyframes", "interp", "sr1", "sr2")


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
class CascadeSettings:
    num_frames: int = 8
    height: int = 40
    width: int = 64
    keyframe_steps: int = 75
    keyframe_guidance: float = 9.0
    # keyframe guidance when sampling starts from a DDIM-inverted clip (vmc, tav, inversion): None keeps
    # keyframe_guidance (Show-1: the official VMC samples at 9.0 either way); a small backbone may need more to
    # override the appearance the inverted noise carries
    inverted_keyframe_guidance: float | None = None
    interp_new_per_pair: int = 3
    interp_steps: int = 75
    interp_guidance: float = 4.0
    sr1_scale: int = 4
    sr1_window: int = 8
    sr1_stride: int = 7
    sr1_steps: int = 125
    sr1_guidance: float = 7.0
    sr1_noise_level: int = 250
    if_steps: int = 70
    if_guidance: float = 4.0
    if_noise_level: int = 150
    sr2_height: int = 320
    sr2_width: int = 576
    sr2_steps: int = 50
    sr2_strength: float = 0.8
    sr2_guidance: float = 15.0  # the pipeline's default; the official code passes none
    negative_prompt: str = ""
    sr2_negative_prompt: str = "low resolution, blur"
    # keep each stage's UNet loaded between videos (small cascades: shapes, tiny) instead of loading it per
    # video and releasing it after (what lets Show-1's stages take turns on a 24 GB GPU)
    keep_models: bool = False


@dataclass
class Backbone:
    base: Source
    interpolation: Source | None = None
    sr1: Source | None = None
    if_sr: Source | None = None  # without it SR1's first window conditions on its own upscaled frame
    sr2: Source | None = None
    name: str = "custom"
    settings: CascadeSettings = field(default_factory=CascadeSettings)
    adaptation: dict = field(default_factory=dict)  # per method ("vmc", "tav", …): TrainConfig fields, inversion_steps
    training: dict = field(default_factory=dict)  # how the weights were trained (cascade.json), e.g. held-out motions
    # its stages come from several places (a copy of show-1-base with its siblings or the hub: vmc.backbones), so
    # run.json and adapter.json say which
    assembled: bool = False
    # "show1": the Show-1 cascade (Show1Cascade); "latent": one latent video stage, ModelScope / ZeroScope
    # (vmc.pipelines.latent_video), whose `base` is the whole diffusers pipeline folder and `settings` a
    # LatentVideoSettings
    kind: str = "show1"
    layout: str = ""  # kind "dit" (vmc.pipelines.dit): "wan" or "cogvideox"; its `settings` a DiTSettings

    def pipeline(self, device, dtype=None):
        """The sampler of this backbone: Show1Cascade or LatentVideoPipeline, which answer the same calls."""
        if self.kind == "latent":
            from vmc.pipelines.latent_video import LatentVideoPipeline

            return LatentVideoPipeline(self, device, dtype)
        if self.kind == "dit":  # the DiT kind: one line
            from vmc.pipelines.dit import DiTPipeline

            return DiTPipeline(self, device, dtype)
        return Show1Cascade(self, device, dtype)

    def adaptation_for(self, method: str) -> dict:
        return dict(self.adaptation.get(method, {}))

    def fingerprint(self) -> str:
        """One digest of every model folder's Source.fingerprint: a run folder records it, so that videos from
        other weights under the same backbone name are not mixed into it."""
        sources = [getattr(self, k) for k in LOCAL_DIRS]
        return hashlib.sha256(json.dumps([s and s.fingerprint() for s in sources]).encode()).hexdigest()[:16]

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this backbone has, in order (a cascade may stop after any stage but the first)."""
        if self.kind in ("latent", "dit"):
            return ("video",)
        have = {"keyframes": True, "interp": self.interpolation is not None, "sr1": self.sr1 is not None,
                "sr2": self.sr2 is not None}
        out = []
        for stage in STAGES:
            if not have[stage]:
                break
            out.append(stage)
        return tuple(out)

    @classmethod
    def from_dir(cls, root: str | Path):
        """A local directory holding show-1-base/ and, for the later stages, show-1-interpolation/, show-1-sr1/
        (with IF-II-L-v1.0/ for its first frame, optional), show-1-sr2/; optionally cascade.json ({"name": …,
        "settings": {CascadeSettings fields}, and per adapting method ("vmc", "tav", …) {TrainConfig fields,
        inversion_steps}})."""
        from eval.errors import UserError

        root = Path(root)
        if not (root / LOCAL_DIRS["base"]).is_dir():
            raise UserError(f"{root}: not a cascade directory, missing {LOCAL_DIRS['base']}")
        meta = json.loads((root / "cascade.json").read_text()) if (root / "cascade.json").is_file() else {}
        try:
            settings = CascadeSettings(**meta.get("settings", {}))
        except TypeError as e:
            raise UserError(f"{root / 'cascade.json'}: {e}") from None
        return cls(**{k: Source(str(root / d)) for k, d in LOCAL_DIRS.items() if (root / d).is_dir()},
                   name=meta.get("name", root.name), settings=settings,
                   adaptation={k: v for k, v in meta.items()
                               if isinstance(v, dict) and k not in ("settings", "training")},
                   training=meta.get("training", {}))


LOCAL_DIRS = {"base": "show-1-base", "interpolation": "show-1-interpolation", "sr1": "show-1-sr1",
              "if_sr": "IF-II-L-v1.0", "sr2": "show-1-sr2"}


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] → uint8 F×H×W×3."""
    x = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


def load_part(cls, source: Source, subfolder: str, dtype: torch.dtype, **kw):
    """cls.from_pretrained of one part of a model folder, with one clear line for missing, gated or unreachable
    weights (the weights variant, e.g. fp16, when loading in fp16)."""
    from eval.errors import UserError

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


class ModelPipeline:
    """What every backbone's sampler shares: loading a part of a model folder, a stage's UNet kept or released
    after each video (`keep_models`), and its text embeddings computed once per pipeline. A subclass names its
    UNet and scheduler classes."""

    def __init__(self, backbone: Backbone, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        self.backbone = backbone
        self.settings = backbone.settings
        self.device = torch.device(device)
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self._embeds: dict[str, torch.Tensor] = {}
        self._kept: dict[str, torch.nn.Module] = {}

    def unet_class(self):
        raise NotImplementedError

    def scheduler_class(self):
        raise NotImplementedError

    def _load(self, cls, source: Source, subfolder: str, **kw):
        return load_part(cls, source, subfolder, self.dtype, **kw)

    def load_unet(self, source: Source):
        return self._load(self.unet_class(), source, "unet", torch_dtype=self.dtype).to(self.device).eval()

    def load_scheduler(self, source: Source, subfolder: str = "scheduler", cls=None):
        return self._load(cls or self.scheduler_class(), source, subfolder)

    def inversion_scheduler(self, schedule: str, base_config: dict):
        """The DDIM scheduler that inverts a clip (vmc.inversion; a DiT backbone inverts through its own levels)."""
        from vmc.inversion import inversion_scheduler

        return inversion_scheduler(schedule, base_config)

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


class Show1Cascade(ModelPipeline):
    known_stages = STAGES  # what --stages may name (a backbone has the first few: Backbone.stages)

    def unet_class(self):
        from vmc.models import Show1UNet3D

        return Show1UNet3D

    def scheduler_class(self):
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler

    @property
    def sample_size(self) -> tuple[int, int]:
        """The keyframe UNet's sample height and width: the keyframes' own, in pixels."""
        return self.settings.height, self.settings.width

    def fps(self, stage: str) -> float:
        """As the official code saves each stage."""
        return 2.0 if stage == "keyframes" else 8.0

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """What the keyframe UNet takes of a clip (B, 3, F, H, W) in [-1, 1]: the pixels themselves."""
        return video

    # text ------------------------------------------------------------------------------------------------
    def text_embeddings(self, prompts: list[str]) -> list[torch.Tensor]:
        """T5 embeddings of prompts with the base model's encoder, each computed once per cascade."""
        todo = [p for p in dict.fromkeys(prompts) if p not in self._embeds]
        if todo:
            from transformers import AutoTokenizer, T5EncoderModel

            from vmc.pipelines.text import T5PromptEncoder

            src = self.backbone.base
            tokenizer = self._load(AutoTokenizer, src, "tokenizer")
            encoder = self._load(T5EncoderModel, src, "text_encoder", torch_dtype=self.dtype)
            enc = T5PromptEncoder(tokenizer, encoder, self.device, self.dtype)
            for p, e in zip(todo, enc.encode(todo)):
                self._embeds[p] = e
            self.release(encoder)
        return [self._embeds[p][None] for p in prompts]

    # stages ----------------------------------------------------------------------------------------------
    def keyframes(self, prompt: str, seed: int, init_latents: torch.Tensor | None = None, unet=None, guidance=None):
        from vmc.pipelines.keyframes import KeyframeSampler

        s = self.settings
        text, negative = self.text_embeddings([prompt, s.negative_prompt])
        own = unet is None
        unet = unet or self.stage_unet(self.backbone.base)
        sampler = KeyframeSampler(unet, self.load_scheduler(self.backbone.base))
        cfg = s.keyframe_guidance
        if init_latents is not None and s.inverted_keyframe_guidance is not None:
            cfg = s.inverted_keyframe_guidance
        out = sampler(text, negative, s.num_frames, s.height, s.width, s.keyframe_steps, cfg,
                      generator=torch.Generator(self.device).manual_seed(seed), init_latents=init_latents,
                      guidance=guidance)
        if own:
            self.done_with(unet)
        return out

    def interpolate(self, keyframes: torch.Tensor, prompt: str, seed: int):
        from vmc.pipelines.interpolation import InterpolationSampler

        s = self.settings
        text, negative = self.text_embeddings([prompt, s.negative_prompt])
        unet = self.stage_unet(self.backbone.interpolation)
        out = InterpolationSampler(unet, self.load_scheduler(self.backbone.interpolation))(
            keyframes, text, negative, s.interp_new_per_pair, s.interp_steps, s.interp_guidance,
            generator=torch.Generator(self.device).manual_seed(seed))
        self.done_with(unet)
        return out

    def first_frame_sr(self, frame: torch.Tensor, text, negative, seed: int) -> torch.Tensor:
        """SR1's first frame with DeepFloyd IF-II-L (diffusers' IFSuperResolutionPipeline)."""
        from diffusers import DDPMScheduler, IFSuperResolutionPipeline, UNet2DConditionModel

        s, src = self.settings, self.backbone.if_sr
        unet = self._load(UNet2DConditionModel, src, "unet", torch_dtype=self.dtype).to(self.device)
        pipe = IFSuperResolutionPipeline(
            tokenizer=None, text_encoder=None, unet=unet, scheduler=self.load_scheduler(src, cls=DDPMScheduler),
            image_noising_scheduler=self.load_scheduler(src, "image_noising_scheduler", DDPMScheduler),
            safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(leave=False, desc="sr1 first frame", disable=not shown())
        h, w = frame.shape[-2] * s.sr1_scale, frame.shape[-1] * s.sr1_scale
        out = pipe(image=frame.to(self.dtype), prompt_embeds=text, negative_prompt_embeds=negative, height=h,
                   width=w, num_inference_steps=s.if_steps, guidance_scale=s.if_guidance,
                   noise_level=s.if_noise_level, generator=torch.Generator(self.device).manual_seed(seed),
                   output_type="pt").images
        self.release(unet)
        return out

    def sr1(self, video: torch.Tensor, prompt: str, seed: int):
        from diffusers import DDPMScheduler

        from vmc.pipelines.super_resolution import PixelSRSampler

        s, src = self.settings, self.backbone.sr1
        text, negative = self.text_embeddings([prompt, s.negative_prompt])
        first = self.first_frame_sr(video[:, :, 0], text, negative, seed) if self.backbone.if_sr else None
        unet = self.stage_unet(src)
        sampler = PixelSRSampler(unet, self.load_scheduler(src),
                                 self.load_scheduler(src, "image_noising_scheduler", DDPMScheduler))
        out = sampler(video, (lambda _frame: first) if first is not None else None, text, negative, s.sr1_scale, s.sr1_window, s.sr1_stride,
                      s.sr1_steps, s.sr1_guidance, s.sr1_noise_level, seed=seed)
        self.done_with(unet)
        return out

    def sr2(self, video: torch.Tensor, prompt: str, seed: int):
        from diffusers import AutoencoderKL, VideoToVideoSDPipeline
        from PIL import Image
        from transformers import CLIPTextModel, CLIPTokenizer

        s, src = self.settings, self.backbone.sr2
        frames = [Image.fromarray(f).resize((s.sr2_width, s.sr2_height)) for f in to_uint8(video[0])]
        unet = self.load_unet(src)
        pipe = VideoToVideoSDPipeline(
            vae=self._load(AutoencoderKL, src, "vae", torch_dtype=self.dtype),
            text_encoder=self._load(CLIPTextModel, src, "text_encoder", torch_dtype=self.dtype),
            tokenizer=self._load(CLIPTokenizer, src, "tokenizer"), unet=unet,
            scheduler=self.load_scheduler(src)).to(self.device)
        pipe.set_progress_bar_config(leave=False, desc="sr2", disable=not shown())
        out = pipe(prompt, video=frames, strength=s.sr2_strength, num_inference_steps=s.sr2_steps,
                   guidance_scale=s.sr2_guidance, negative_prompt=s.sr2_negative_prompt,
                   generator=torch.Generator(self.device).manual_seed(seed), output_type="pt").frames
        self.release(pipe.vae, pipe.text_encoder, unet)
        return out.permute(0, 2, 1, 3, 4) * 2 - 1  # (B, F, C, H, W) in [0, 1] → (B, C, F, H, W) in [-1, 1]

    def run(self, prompt: str, seed: int = 0, stages=None, init_latents=None, keyframe_unet=None,
            guidance=None) -> dict:
        """Run the cascade up to the last requested stage (default: every stage the backbone has); returns
        {stage: (B, 3, F, H, W) in [-1, 1]}. `guidance` steers the keyframe sampling (KeyframeSampler)."""
        stages = stages or self.backbone.stages
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
        lacking = set(stages) - set(self.backbone.stages)
        if lacking:
            from eval.errors import UserError

            raise UserError(f"backbone {self.backbone.name} has no {', '.join(sorted(lacking))} stage "
                            f"(it has {', '.join(self.backbone.stages)})")
        last = max(STAGES.index(st) for st in stages)
        out = {"keyframes": self.keyframes(prompt, seed, init_latents, keyframe_unet, guidance)}
        if last >= 1:
            out["interp"] = self.interpolate(out["keyframes"], prompt, seed)
        if last >= 2:
            out["sr1"] = self.sr1(out["interp"], prompt, seed)
        if last >= 3:
            out["sr2"] = self.sr2(out["sr1"], prompt, seed)
        return out
