"""Interpolation stage: F keyframes → (F−1)·(k+1)+1 frames with the interpolation UNet (official defaults:
k = 3 new frames per pair, so 8 → 29; 75 steps; guidance 4.0).

Each pair of neighbouring keyframes is a window of k+2 frames. The UNet sees 7 channels: the noisy window,
the two endpoints blended trilinearly across it, and a mask marking the endpoints. As in the official
code every window starts from the same noise and every window's output (endpoints included) is written
over the previous one's shared endpoint. Windows are independent, so they run as one batch: the same
result as the official one-window-at-a-time loop in (F−1)× fewer UNet calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor

from eval.progress import inner_bar
from vmc.pipelines.keyframes import guided_prediction, scheduler_step_per_frame


def interpolation_condition(keyframes: torch.Tensor, new_per_pair: int) -> torch.Tensor:
    """(B, 3, F, H, W) → (B·(F−1), 4, k+2, H, W): endpoint blend and endpoint mask for every window."""
    b, c, f, h, w = keyframes.shape
    win = new_per_pair + 2
    pairs = torch.stack([keyframes[:, :, :-1], keyframes[:, :, 1:]], dim=3)  # B, C, F-1, 2, H, W
    pairs = pairs.permute(0, 2, 1, 3, 4, 5).reshape(b * (f - 1), c, 2, h, w)
    blend = F.interpolate(pairs, (win, h, w), mode="trilinear", align_corners=True)
    mask = torch.zeros(b * (f - 1), 1, win, h, w, dtype=keyframes.dtype, device=keyframes.device)
    mask[:, :, [0, -1]] = 1
    return torch.cat([blend, mask], dim=1)


def stitch_windows(windows: torch.Tensor, batch: int) -> torch.Tensor:
    """(B·(F−1), C, k+2, H, W) → (B, C, (F−1)(k+1)+1, H, W), later windows overwriting shared endpoints."""
    n, c, win, h, w = windows.shape
    pairs = n // batch
    windows = windows.reshape(batch, pairs, c, win, h, w)
    out = windows.new_zeros(batch, c, pairs * (win - 1) + 1, h, w)
    for i in range(pairs):
        out[:, :, i * (win - 1): i * (win - 1) + win] = windows[:, i]
    return out


class InterpolationSampler:
    def __init__(self, unet, scheduler):
        self.unet, self.scheduler = unet, scheduler

    @torch.no_grad()
    def __call__(self, keyframes: torch.Tensor, prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor | None,
                 new_per_pair: int = 3, num_inference_steps: int = 75, guidance_scale: float = 4.0,
                 generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
        unet, scheduler = self.unet, self.scheduler
        dtype, device = unet.dtype, keyframes.device
        b, c, f, h, w = keyframes.shape
        pairs = f - 1
        cond = interpolation_condition(keyframes.to(dtype), new_per_pair)
        noise = randn_tensor((b, c, new_per_pair + 2, h, w), generator=generator, device=device, dtype=dtype)
        x = (noise * scheduler.init_noise_sigma).repeat_interleave(pairs, dim=0)
        text = prompt_embeds.to(dtype).repeat_interleave(pairs, dim=0)
        negative = negative_embeds.to(dtype).repeat_interleave(pairs, dim=0) if negative_embeds is not None else None
        learned = getattr(scheduler.config, "variance_type", None) in ("learned", "learned_range")
        scheduler.set_timesteps(num_inference_steps, device=device)
        for t in inner_bar(scheduler.timesteps, "interpolation", progress):
            inp = scheduler.scale_model_input(torch.cat([x, cond], dim=1), t)
            eps = guided_prediction(unet, inp, t, text, negative, guidance_scale, learned_variance=learned)
            x = scheduler_step_per_frame(scheduler, eps, t, x, generator)
        return stitch_windows(x, b).clamp(-1, 1)
