"""The latent text-to-video backbone of ModelScope and ZeroScope: one stage, a CLIP text encoder, a VAE and
diffusers' `UNet3DConditionModel` over VAE latents, sampled with DDIM, as diffusers' `TextToVideoSDPipeline` does.

It answers the calls every kind answers (vmc.backbones.base.BackbonePipeline), so every method runs on it
unchanged: `encode` gives VAE latents scaled by the VAE's scaling factor (the distribution's mean, so that a clip
always encodes the same way), and `run`'s one stage, "video", is sampled by the same keyframe sampler as Show-1's
first stage (guidance hook included) and decoded. A folder of this kind is in diffusers' TextToVideoSDPipeline
layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), whose optional cascade.json sets
LatentVideoSettings fields under "settings" and method settings under their names. The VAE encodes and decodes
a few frames at a time (`vae_frames`), so 24 frames at 576×320 fit a 24 GB GPU. Official defaults (ZeroScope v2
576w): 24 frames at 576×320, 50 DDIM steps, guidance 9 (diffusers' default for this pipeline), an empty negative
prompt, 8 fps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vmc.backbones.base import Backbone, BackbonePipeline, SamplingSettings, Source, folder_backbone

STAGES = ("video",)
PARTS = ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json", "tokenizer/",
         "scheduler/scheduler_config.json")  # what a folder of this layout holds


@dataclass
class LatentVideoSettings(SamplingSettings):
    """ZeroScope's published defaults; the first stage's names (SamplingSettings) are the whole video's."""

    num_frames: int = 24
    height: int = 320
    width: int = 576
    keyframe_steps: int = 50
    fps: float = 8.0
    vae_frames: int = 8  # frames per VAE encode / decode call


class LatentVideoPipeline(BackbonePipeline):
    kind = "latent"
    description = "a latent video backbone (ModelScope / ZeroScope)"
    layout = "a diffusers TextToVideoSDPipeline folder (ModelScope / ZeroScope: " + ", ".join(PARTS) + ")"
    settings_class = LatentVideoSettings
    known_stages = STAGES
    model_index_classes = ("TextToVideoSDPipeline",)

    @classmethod
    def from_dir(cls, root: Path, note) -> Backbone:
        cls.check_parts(root, PARTS)
        return folder_backbone(cls, {"base": Source(str(root))}, root)

    def __init__(self, backbone, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        super().__init__(backbone, device, dtype)
        self._vae = None

    def unet_class(self):
        from diffusers import UNet3DConditionModel

        return UNet3DConditionModel

    def scheduler_class(self):
        from diffusers import DDIMScheduler

        return DDIMScheduler

    @property
    def vae(self):
        if self._vae is None:
            from diffusers import AutoencoderKL

            self._vae = self._load(AutoencoderKL, self.backbone.base, "vae", torch_dtype=self.dtype).to(self.device)
            self._vae.eval().requires_grad_(False)
        return self._vae

    @property
    def vae_scale(self) -> int:
        """How much smaller the latents are than the frames (8 for ZeroScope), read from the VAE's config as
        diffusers does (the VAE is loaded once and kept: every clip and video passes through it)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def sample_size(self) -> tuple[int, int]:
        """The UNet's sample height and width at the settings' frame size."""
        s, f = self.settings, self.vae_scale
        return s.height // f, s.width // f

    def fps(self, stage: str) -> float:
        return self.settings.fps

    # text ------------------------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[str]) -> list[torch.Tensor]:
        """CLIP text embeddings: the last hidden state of 77 padded tokens, as TextToVideoSDPipeline encodes a
        prompt."""
        from transformers import CLIPTextModel, CLIPTokenizer

        src = self.backbone.base
        tokenizer = self._load(CLIPTokenizer, src, "tokenizer")
        encoder = self._load(CLIPTextModel, src, "text_encoder", torch_dtype=self.dtype).to(self.device).eval()
        tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors="pt")
        mask = tokens.attention_mask.to(self.device) if getattr(encoder.config, "use_attention_mask", False) else None
        with torch.no_grad():
            out = encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]
        self.release(encoder)
        return list(out)

    # latents ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) in [-1, 1] → (B, C, F, H/8, W/8) latents (the mean of the VAE's distribution, scaled)."""
        vae, b, f = self.vae, video.shape[0], video.shape[2]
        frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1).to(self.device, vae.dtype)
        step = max(1, self.settings.vae_frames)
        latents = torch.cat([vae.encode(frames[i:i + step]).latent_dist.mean
                             for i in range(0, len(frames), step)]) * vae.config.scaling_factor
        return latents.unflatten(0, (b, f)).permute(0, 2, 1, 3, 4).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, F, h, w) latents → (B, 3, F, H, W) frames in [-1, 1] (clamped)."""
        vae, b, f = self.vae, latents.shape[0], latents.shape[2]
        flat = latents.permute(0, 2, 1, 3, 4).flatten(0, 1).to(vae.dtype) / vae.config.scaling_factor
        step = max(1, self.settings.vae_frames)
        frames = torch.cat([vae.decode(flat[i:i + step]).sample for i in range(0, len(flat), step)])
        return frames.unflatten(0, (b, f)).permute(0, 2, 1, 3, 4).float().clamp(-1, 1)

    # sampling --------------------------------------------------------------------------------------------
    def run(self, prompt: str, seed: int = 0, stages=None, init_latents=None, keyframe_unet=None,
            guidance=None) -> dict:
        """{"video": (B, 3, F, H, W) in [-1, 1]} (BackbonePipeline.run)."""
        self.check_stages(stages or STAGES)
        return {"video": self.decode(self.sample_keyframes(prompt, seed, init_latents, keyframe_unet, guidance))}
