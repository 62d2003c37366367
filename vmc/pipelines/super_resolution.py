"""Pixel super-resolution stage (SR1): 40×64 → 160×256 in overlapping windows (official defaults: windows of
8 frames with stride 7, 125 steps, guidance 7.0, noise level 250).

The UNet sees the noisy window and its condition: the low-resolution window upscaled bilinearly and noised
to `noise_level`, whose first frame is replaced by a clean, already upscaled frame — for the first window
the output of an image SR model (DeepFloyd IF-II-L in the official cascade), for every later window the
overlapping frame the previous window produced. Without an image SR model (the shapes world) the first
window keeps its own noised, upscaled first frame, as the model saw half the time in training. The noise level is the UNet's class label. As in the
official code each window draws its noise from a generator seeded afresh with the same seed.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor

from eval.progress import inner_bar
from vmc.pipelines.keyframes import guided_prediction, scheduler_step_per_frame


def upscale_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, F, h, w) → (B, C, F, height, width), bilinear with align_corners as the official code."""
    b, c, f, h, w = frames.shape
    flat = frames.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    up = F.interpolate(flat, (height, width), mode="bilinear", align_corners=True)
    return up.reshape(b, f, c, height, width).permute(0, 2, 1, 3, 4)


class PixelSRSampler:
    def __init__(self, unet, scheduler, noising_scheduler):
        self.unet, self.scheduler, self.noising_scheduler = unet, scheduler, noising_scheduler

    @torch.no_grad()
    def window(self, low: torch.Tensor, first_frame: torch.Tensor | None, text: torch.Tensor,
               negative: torch.Tensor | None, height: int, width: int, num_inference_steps: int,
               guidance_scale: float, noise_level: int, generator: torch.Generator | None,
               progress: bool = False) -> torch.Tensor:
        """Upscale one window (B, 3, F, h, w) whose first frame is given at full size (B, 3, 1, H, W)."""
        unet, scheduler = self.unet, self.scheduler
        dtype, device = unet.dtype, low.device
        b, c, f = low.shape[:3]
        x = randn_tensor((b, c, f, height, width), generator=generator, device=device, dtype=dtype)
        x = x * scheduler.init_noise_sigma
        cond = upscale_frames(low.to(dtype), height, width)
        levels = torch.full((b,), noise_level, device=device, dtype=torch.long)
        cond = self.noising_scheduler.add_noise(
            cond, randn_tensor(cond.shape, generator=generator, device=device, dtype=dtype), levels)
        if first_frame is not None:
            cond[:, :, :1] = first_frame.to(device, dtype)
        learned = getattr(scheduler.config, "variance_type", None) in ("learned", "learned_range")
        scheduler.set_timesteps(num_inference_steps, device=device)
        for t in inner_bar(scheduler.timesteps, "sr1 window", progress):
            inp = scheduler.scale_model_input(torch.cat([x, cond], dim=1), t)
            eps = guided_prediction(unet, inp, t, text.to(dtype), negative.to(dtype) if negative is not None else None,
                                    guidance_scale, class_labels=levels, learned_variance=learned)
            x = scheduler_step_per_frame(scheduler, eps, t, x, generator)
        return x

    def __call__(self, video: torch.Tensor, first_frame_sr: Callable[[torch.Tensor], torch.Tensor] | None,
                 prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor | None, scale: int = 4,
                 window_size: int = 8, stride: int = 7, num_inference_steps: int = 125, guidance_scale: float = 7.0,
                 noise_level: int = 250, seed: int = 0, progress: bool = True) -> torch.Tensor:
        """video (B, 3, F, h, w) → (B, 3, F, scale·h, scale·w); first_frame_sr maps (B, 3, h, w) low-res frames
        to (B, 3, scale·h, scale·w) in [-1, 1], or is None (the first window conditions on itself)."""
        b, c, f, h, w = video.shape
        if f < window_size or (f - window_size) % stride:
            raise ValueError(f"{f} frames cannot be tiled by windows of {window_size} with stride {stride}")
        height, width = h * scale, w * scale
        out = torch.zeros(b, c, f, height, width, device=video.device, dtype=self.unet.dtype)
        starts = range(0, f - window_size + 1, stride)
        for i in inner_bar(starts, "sr1", progress):
            if i > 0:
                first = out[:, :, i:i + 1].clone()
            else:
                first = first_frame_sr(video[:, :, 0]).unsqueeze(2) if first_frame_sr else None
            g = torch.Generator(device=video.device).manual_seed(seed)
            out[:, :, i:i + window_size] = self.window(video[:, :, i:i + window_size], first, prompt_embeds,
                                                       negative_embeds, height, width, num_inference_steps,
                                                       guidance_scale, noise_level, g)
        return out.clamp(-1, 1)
