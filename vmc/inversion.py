"""DDIM inversion of a reference clip: the starting noise of VMC's keyframe sampling.

Deterministic DDIM run backwards (empty prompt, no guidance, official default 75 steps): at each level the
UNet's ε at the next timestep, evaluated on the current sample, carries the sample one level up. By default
the DDIM schedule uses the base model's own betas (squaredcos_cap_v2); `schedule="sd15"` reproduces the
official code, which inverts with Stable Diffusion 1.5's scaled-linear schedule (beta 0.00085–0.012,
steps_offset 1) whatever the backbone (an ε-prediction one; a v-prediction backbone, read through
vmc.prediction, inverts with its own schedule only).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from eval.progress import inner_bar
from vmc.prediction import as_epsilon

SD15 = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            clip_sample=False, set_alpha_to_one=False, steps_offset=1)
SCHEDULES = ("base", "sd15")


def inversion_scheduler(schedule: str, base_config: dict) -> DDIMScheduler:
    if schedule == "sd15":
        if base_config.get("prediction_type", "epsilon") != "epsilon":
            raise ValueError("the sd15 inversion schedule reproduces the official code on an ε-prediction backbone; "
                             f"this one predicts {base_config['prediction_type']}: use the base schedule")
        return DDIMScheduler(**SD15)
    if schedule != "base":
        raise ValueError(f"unknown inversion schedule '{schedule}' (schedules: {', '.join(SCHEDULES)})")
    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "steps_offset",
            "prediction_type")
    return DDIMScheduler(**{k: base_config[k] for k in keys if k in base_config}, clip_sample=False,
                         set_alpha_to_one=False)


@torch.no_grad()
def ddim_invert(unet, video: torch.Tensor, text_embeds: torch.Tensor, scheduler: DDIMScheduler,
                num_steps: int = 75, progress: bool = True, timesteps=None, keep: dict | None = None) -> torch.Tensor:
    """video (B, 3, F, H, W) in [-1, 1] → the noise it maps to at the top of the schedule.

    `timesteps` replaces the scheduler's `num_steps` levels with these (e.g. a sampler's own, so that a method
    guided by the reference at each sampling step finds the reference at exactly that noise level); `keep`, a
    dict, receives the sample reached at each level {t: x_t} (as the official MotionClone and DMT code keep them).
    """
    if timesteps is None:
        scheduler.set_timesteps(num_steps)
        stride = scheduler.config.num_train_timesteps // num_steps
        levels = [int(t) for t in scheduler.timesteps.flip(0)]
        previous = [min(t - stride, 999) for t in levels]
    else:
        levels = sorted({int(t) for t in timesteps})
        previous = [-1, *levels[:-1]]
    alphas = scheduler.alphas_cumprod.to(torch.float64)
    x = video.to(unet.dtype)
    text = text_embeds.to(unet.dtype)
    for t, prev in inner_bar(list(zip(levels, previous)), "ddim inversion", progress):
        eps = as_epsilon(unet(x, t, text).sample.double(), x.double(), alphas[t], scheduler.config.prediction_type)
        a_prev = alphas[prev] if prev >= 0 else scheduler.final_alpha_cumprod.double()
        a_t = alphas[t]
        x0 = (x.double() - (1 - a_prev).sqrt() * eps) / a_prev.sqrt()
        x = (a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps).to(unet.dtype)
        if keep is not None:
            keep[t] = x
    return x


def prior_noise(inverted: torch.Tensor, prior: float, seed: int) -> torch.Tensor:
    """MotionDirector's noise prior: sqrt(p)·inverted + sqrt(1 − p)·fresh noise (seeded), unit variance."""
    g = torch.Generator("cpu").manual_seed(seed)
    fresh = torch.randn(inverted.shape, generator=g).to(inverted.device, inverted.dtype)
    return prior ** 0.5 * inverted + (1 - prior) ** 0.5 * fresh
