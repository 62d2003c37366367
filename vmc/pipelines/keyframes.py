"""Keyframe stage: text → 8 × 40×64 pixel-space frames with the base UNet (official defaults: DPM-Solver++
with the base scheduler config, 75 steps, guidance 9.0). The same sampler draws a latent video backbone's
latents (vmc.backbones.latent) with `pixels=False`.

As in the official pipeline, the scheduler steps each frame as its own sample (B·F, C, H, W), which matters
for DPM-Solver's dynamic thresholding (its quantile is taken per frame). `init_latents` replaces the
starting noise, e.g. with a DDIM inversion of a reference clip (VMC).

`guidance` (training-free motion transfer, vmc.families.guidance) corrects the noisy sample at the steps it
`wants`, before the sampler's own step: it gets the sample and a function that runs the UNet on a sample (target
prompt, no CFG, with gradients) and returns the features it names, and returns the corrected sample. The step then
evaluates the UNet on that sample, so the correction works the same whatever the scheduler. Without guidance the
loop is the one it always was.
"""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor

from eval.progress import inner_bar
from vmc.models.features import UNetFeatures


PIXEL_CHANNELS = 3  # ε channels; a learned-variance UNet returns 3 more, conditioning inputs add more in


def guided_prediction(unet, x: torch.Tensor, t, text: torch.Tensor, negative: torch.Tensor | None,
                      guidance_scale: float, class_labels: torch.Tensor | None = None,
                      learned_variance: bool = False, channels: int = PIXEL_CHANNELS) -> torch.Tensor:
    """The UNet's ε (its first `channels` output channels; with learned_variance, the text branch's variance
    channels after them) under classifier-free guidance: ε_u + s·(ε_c − ε_u), both branches in one batch."""
    c = channels
    if negative is not None and guidance_scale > 1.0:
        labels = torch.cat([class_labels] * 2) if class_labels is not None else None
        out = unet(torch.cat([x, x]), t, torch.cat([negative, text]), class_labels=labels).sample
        uncond, cond = out.chunk(2)
        eps = uncond[:, :c] + guidance_scale * (cond[:, :c] - uncond[:, :c])
        return torch.cat([eps, cond[:, c:]], dim=1) if learned_variance else eps
    out = unet(x, t, text, class_labels=class_labels).sample
    return out if learned_variance else out[:, :c]


def scheduler_step_per_frame(scheduler, eps: torch.Tensor, t, x: torch.Tensor, generator=None) -> torch.Tensor:
    """scheduler.step on (B·F, C, H, W), reshaped back to (B, C, F, H, W)."""
    b, c, f, h, w = x.shape
    flat = lambda v: v.permute(0, 2, 1, 3, 4).reshape(b * f, -1, h, w)  # noqa: E731
    prev = scheduler.step(flat(eps), t, flat(x), generator=generator).prev_sample
    return prev.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


class KeyframeSampler:
    def __init__(self, unet, scheduler, pixels: bool = True):
        """`pixels`: the UNet samples pixels (Show-1), whose result is clamped to [-1, 1]; else latents (ModelScope,
        ZeroScope), returned as they are for the VAE to decode."""
        self.unet, self.scheduler, self.pixels = unet, scheduler, pixels

    @torch.no_grad()
    def __call__(self, prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor | None = None,
                 num_frames: int = 8, height: int = 40, width: int = 64, num_inference_steps: int = 75,
                 guidance_scale: float = 9.0, generator: torch.Generator | None = None,
                 init_latents: torch.Tensor | None = None, progress: bool = True, guidance=None) -> torch.Tensor:
        """(B, C, F, H, W): frames in [-1, 1] (clamped), or latents."""
        unet, scheduler = self.unet, self.scheduler
        device, dtype = prompt_embeds.device, unet.dtype
        b = prompt_embeds.shape[0]
        shape = (b, unet.config.in_channels, num_frames, height, width)
        if init_latents is not None:
            if tuple(init_latents.shape) != shape:
                raise ValueError(f"init_latents has shape {tuple(init_latents.shape)}, expected {shape}")
            x = init_latents.to(device, dtype)
        else:
            x = randn_tensor(shape, generator=generator, device=device, dtype=dtype) * scheduler.init_noise_sigma
        scheduler.set_timesteps(num_inference_steps, device=device)
        text = prompt_embeds.to(dtype)
        negative = negative_embeds.to(dtype) if negative_embeds is not None else None
        learned = getattr(scheduler.config, "variance_type", None) in ("learned", "learned_range")
        for i, t in enumerate(inner_bar(scheduler.timesteps, "keyframes", progress)):
            if guidance is not None and guidance.wants(i):
                x = self.guide(guidance, x, t, i, text)
            eps = guided_prediction(unet, scheduler.scale_model_input(x, t), t, text, negative, guidance_scale,
                                    learned_variance=learned, channels=shape[1])
            x = scheduler_step_per_frame(scheduler, eps, t, x, generator)
        return x.clamp(-1, 1) if self.pixels else x

    def guide(self, guidance, x: torch.Tensor, t, step: int, text: torch.Tensor) -> torch.Tensor:
        """The guidance's correction of x at this step; the features it reads are those of the UNet's
        conditional branch (the official MotionClone and DMT code guide with it alone)."""
        features = UNetFeatures(self.unet, guidance.attention_probs, guidance.outputs)

        def read(sample: torch.Tensor) -> dict:  # a guidance may optimise an fp32 copy of an fp16 sample
            return features(self.scheduler.scale_model_input(sample, t).to(self.unet.dtype), t, text)

        with torch.enable_grad():
            out = guidance.guide(x.detach(), t, step, read)
        return out.detach().to(x.dtype)
