"""What a UNet's output means: ε (Show-1, every official checkpoint) or v = √ᾱ·ε − √(1−ᾱ)·x₀ (the shapes
cascade), as the backbone's scheduler config says (`prediction_type`).

The samplers hand the output to diffusers' schedulers, which read either. Everything that works with the
noise itself (the VMC losses, the baselines' losses, DDIM inversion) converts the output to ε first, so each
method's objective means the same on either kind of backbone: with x_t = √ᾱ·x₀ + √(1−ᾱ)·ε,
ε = √ᾱ·v + √(1−ᾱ)·x_t.
"""

from __future__ import annotations

import torch

PREDICTION_TYPES = ("epsilon", "v_prediction")


def check_prediction_type(prediction_type: str) -> str:
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unsupported prediction_type '{prediction_type}' (supported: {', '.join(PREDICTION_TYPES)})")
    return prediction_type


def _per_sample(alphas_cumprod_t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(alphas_cumprod_t, device=like.device, dtype=torch.float64 if like.dtype == torch.float64
                        else torch.float32)
    return a.reshape(-1, *([1] * (like.ndim - 1)))


def as_epsilon(output: torch.Tensor, noisy: torch.Tensor, alphas_cumprod_t: torch.Tensor,
               prediction_type: str) -> torch.Tensor:
    """The ε the output stands for, with learned-variance channels cut (output keeps noisy's channels).
    alphas_cumprod_t: ᾱ_t per batch element (or one value)."""
    output = output[:, :noisy.shape[1]]
    if check_prediction_type(prediction_type) == "epsilon":
        return output
    a = _per_sample(alphas_cumprod_t, output)
    return (a.sqrt() * output + (1 - a).sqrt() * noisy).to(output.dtype)


def training_target(clean: torch.Tensor, noise: torch.Tensor, alphas_cumprod_t: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """What the UNet learns to output for x_t made of `clean` and `noise`."""
    if check_prediction_type(prediction_type) == "epsilon":
        return noise
    a = _per_sample(alphas_cumprod_t, noise)
    return (a.sqrt() * noise - (1 - a).sqrt() * clean).to(noise.dtype)
