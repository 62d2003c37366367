"""The Show-1 cascade: keyframes → interpolation → pixel SR (SR1) → latent video-to-video SR (SR2).

A backbone is five model folders in the hub layout (unet/, scheduler/, text_encoder/, …): the three
Show-1 pixel stages, DeepFloyd IF-II-L (SR1's first frame) and the latent SR2 model. Stages load one at a
time and are released after use, so a 24 GB GPU runs the whole cascade; the T5 embeddings are computed
once by the base model's encoder and shared by every T5 stage. Defaults are the official settings
(RECIPES.md); the T5 stages use an empty negative prompt and SR2 "low resolution, blur", as the official
code does.

A folder of this kind is a cascade directory (show-1-base/ and the later stages' folders inside, optionally
cascade.json) or a copy of show-1-base itself (what users set an official VMC config's pretrained_t2v_path to),
whose other stages come from its sibling folders or, where those are absent, from the hub (the `show1` profile).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from eval.errors import UserError
from eval.progress import shown
from vmc.backbones.base import Backbone, BackbonePipeline, SamplingSettings, Source, folder_backbone, to_uint8
from vmc.backbones.profiles import hub_sources

STAGES = ("keyframes", "interp", "sr1", "sr2")
LOCAL_DIRS = {"base": "show-1-base", "interpolation": "show-1-interpolation", "sr1": "show-1-sr1",
              "if_sr": "IF-II-L-v1.0", "sr2": "show-1-sr2"}
STAGE_NAMES = {"base": "keyframes", "interpolation": "interpolation", "sr1": "sr1", "if_sr": "IF-II-L", "sr2": "sr2"}
KEYFRAME_PARTS = ("unet/config.json", "scheduler/", "text_encoder/", "tokenizer/")  # what the keyframe stage loads


@dataclass
class CascadeSettings(SamplingSettings):
    """The first stage's settings (SamplingSettings, at Show-1's defaults) and every later stage's."""

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
    sr2_negative_prompt: str = "low resolution, blur"

class Show1Cascade(BackbonePipeline):
    kind = "show1"
    description = "a Show-1 cascade"
    layout = ("a Show-1 cascade directory (show-1-base/ inside) or a copy of show-1-base (model_index.json "
              "TextToVideoIFPipeline, unet/, scheduler/, text_encoder/, tokenizer/)")
    settings_class = CascadeSettings
    known_stages = STAGES  # a backbone has the first few: stages_of
    # Show-1's stages (a copy of another stage than the base is refused by keyframe_stage_problem)
    model_index_classes = ("TextToVideoIFPipeline", "TextToVideoIFInterpPipeline",
                           "TextToVideoIFSuperResolutionPipeline_Cond")
    reads_unindexed_folders = True  # a cascade directory has no model index; a copy of show-1-base may lack one
    pixels = True

    @classmethod
    def stages_of(cls, backbone: Backbone) -> tuple[str, ...]:
        """The first stages whose folders the backbone has (a cascade may stop after any stage but the first)."""
        have = {"keyframes": True, "interp": backbone.interpolation is not None, "sr1": backbone.sr1 is not None,
                "sr2": backbone.sr2 is not None}
        out = []
        for stage in STAGES:
            if not have[stage]:
                break
            out.append(stage)
        return tuple(out)

    @classmethod
    def from_dir(cls, root: Path, note) -> Backbone:
        """A cascade directory, or a copy of show-1-base with its siblings (`note` gets where each stage is from)."""
        if (root / LOCAL_DIRS["base"]).is_dir():
            return cls.from_cascade_dir(root)
        problem = keyframe_stage_problem(root)
        if problem:
            raise UserError(f"{root}: neither a cascade directory (no {LOCAL_DIRS['base']}/ inside) nor a copy of "
                            f"{LOCAL_DIRS['base']} ({problem})")
        backbone = around_keyframe_stage(root)
        note(sources_line(backbone))
        return backbone

    @classmethod
    def from_cascade_dir(cls, root: str | Path) -> Backbone:
        """A local directory holding show-1-base/ and, for the later stages, show-1-interpolation/, show-1-sr1/
        (with IF-II-L-v1.0/ for its first frame, optional), show-1-sr2/; optionally cascade.json
        (base.folder_backbone)."""
        root = Path(root)
        if not (root / LOCAL_DIRS["base"]).is_dir():
            raise UserError(f"{root}: not a cascade directory, missing {LOCAL_DIRS['base']}")
        return folder_backbone(cls, {k: Source(str(root / d)) for k, d in LOCAL_DIRS.items() if (root / d).is_dir()},
                               root)

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
    def encode_prompts(self, prompts: list[str]) -> list[torch.Tensor]:
        """T5 embeddings with the base model's encoder, shared by every T5 stage."""
        from transformers import AutoTokenizer, T5EncoderModel

        from vmc.pipelines.text import T5PromptEncoder

        src = self.backbone.base
        tokenizer = self._load(AutoTokenizer, src, "tokenizer")
        encoder = self._load(T5EncoderModel, src, "text_encoder", torch_dtype=self.dtype)
        out = T5PromptEncoder(tokenizer, encoder, self.device, self.dtype).encode(prompts)
        self.release(encoder)
        return out

    # stages ----------------------------------------------------------------------------------------------
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
        out = sampler(video, (lambda _frame: first) if first is not None else None, text, negative, s.sr1_scale,
                      s.sr1_window, s.sr1_stride, s.sr1_steps, s.sr1_guidance, s.sr1_noise_level, seed=seed)
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
        """The cascade up to the last requested stage (BackbonePipeline.run)."""
        stages = stages or self.backbone.stages
        self.check_stages(stages)
        last = max(STAGES.index(st) for st in stages)
        out = {"keyframes": self.sample_keyframes(prompt, seed, init_latents, keyframe_unet, guidance)}
        if last >= 1:
            out["interp"] = self.interpolate(out["keyframes"], prompt, seed)
        if last >= 2:
            out["sr1"] = self.sr1(out["interp"], prompt, seed)
        if last >= 3:
            out["sr2"] = self.sr2(out["sr1"], prompt, seed)
        return out


def keyframe_stage_problem(folder: Path) -> str | None:
    """Why `folder` is not a copy of show-1-base, judged by its content rather than its name (None when it is):
    the parts the keyframe stage loads, and a UNet over pixels (3 input channels; interpolation's takes 7, SR1's
    6, SR2's 4), so that a copy of another stage is not taken for it."""
    missing = [part for part in KEYFRAME_PARTS if not (folder / part).exists()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        channels = json.loads((folder / "unet" / "config.json").read_text()).get("in_channels")
    except (OSError, ValueError) as e:
        return f"unreadable unet/config.json: {e}"
    if channels != 3:
        return f"its UNet takes {channels} input channels, not 3: another stage's folder?"
    return None


def around_keyframe_stage(folder: Path) -> Backbone:
    """`folder` (a copy of show-1-base) as the keyframe stage; every other stage from the sibling folder named
    like its hub repo when there is one, else from the hub as the `show1` profile loads it. The settings are the
    official ones (a cascade directory's cascade.json applies when the directory itself is the backbone)."""
    hub = hub_sources("show1")
    others = {k: Source(str(folder.parent / d)) if (folder.parent / d).is_dir() else hub[k]
              for k, d in LOCAL_DIRS.items() if k != "base"}
    return Backbone(Source(str(folder)), **others, name=folder.name, assembled=True)


def sources(backbone: Backbone) -> dict[str, str]:
    """Where each model folder of `backbone` comes from: a local directory, or a hub id at its revision."""
    return {k: s.path if Path(s.path).is_dir() else f"{s.path}@{s.revision or 'main'}"
            for k in LOCAL_DIRS if (s := getattr(backbone, k)) is not None}


def sources_line(backbone: Backbone) -> str:
    """e.g. `backbone: keyframes from /x/show-1-base; interpolation from /x/show-1-interpolation; sr1, IF-II-L,
    sr2 from the hub (showlab/show-1-sr1@main, DeepFloyd/IF-II-L-v1.0@main, showlab/show-1-sr2@main)`."""
    where = sources(backbone)
    hub = [k for k in where if not Path(getattr(backbone, k).path).is_dir()]
    parts = [f"{STAGE_NAMES[k]} from {where[k]}" for k in where if k not in hub]
    if hub:
        parts.append(f"{', '.join(STAGE_NAMES[k] for k in hub)} from the hub ({', '.join(where[k] for k in hub)})")
    return "backbone: " + "; ".join(parts)
