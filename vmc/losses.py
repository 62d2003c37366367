"""Training objectives on video tensors [B, C, F, H, W].

`motion_distillation_loss` is the VMC objective as the official code computes it: with Δv = |v[:, :, 1:] −
v[:, :, :-1]| the absolute frame residuals, 1 − mean over (b, c, h, w) of the cosine over the frame axis
between Δε̂ and Δε. Alternatives by name, for ablations:
- `cosine` — the official objective above;
- `l2` — mean squared difference of the signed frame residuals, (ε̂[:, :, 1:] − ε̂[:, :, :-1]) − (ε[…] − ε[…]);
- `x0_cosine` — the official cosine form on the residuals of the predicted and true clean frames, v̂₀ =
  (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t against v₀ (the paper's δv̂₀ formulation);
- `eps_mse` — the plain ε-MSE of ordinary fine-tuning (the paper's `vmc-eps` ablation).
A learned-variance prediction (6 channels for 3-channel video) is cut to its first channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("cosine", "l2", "x0_cosine", "eps_mse")


def _abs_residuals(v: torch.Tensor) -> torch.Tensor:
    return (v[:, :, 1:] - v[:, :, :-1]).abs()


def residual_cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1 - F.cosine_similarity(_abs_residuals(pred), _abs_residuals(target), dim=2).mean()


def motion_distillation_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "cosine",
                             noisy: torch.Tensor | None = None, clean: torch.Tensor | None = None,
                             alphas_cumprod_t: torch.Tensor | None = None) -> torch.Tensor:
    """pred: the UNet output ε̂; target: the noise ε. `x0_cosine` also needs noisy (x_t), clean (v₀) and
    alphas_cumprod_t (ᾱ_t per batch element)."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss '{kind}' (losses: {', '.join(LOSSES)})")
    pred = pred[:, :target.shape[1]].float()  # learned variance: the ε channels come first
    target = target.float()
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(f"pred and target must both be [B, C, F, H, W], got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if kind == "cosine":
        return residual_cosine_loss(pred, target)
    if kind == "l2":
        delta = lambda v: v[:, :, 1:] - v[:, :, :-1]  # noqa: E731
        return F.mse_loss(delta(pred), delta(target))
    if kind == "eps_mse":
        return F.mse_loss(pred, target)
    if noisy is None or clean is None or alphas_cumprod_t is None:
        raise ValueError("x0_cosine needs noisy, clean and alphas_cumprod_t")
    a = alphas_cumprod_t.float().view(-1, 1, 1, 1, 1)
    x0_pred = (noisy.float() - (1 - a).sqrt() * pred) / a.sqrt()
    return residual_cosine_loss(x0_pred, clean.float())


def appearance_debiased_loss(pred: torch.Tensor, target: torch.Tensor, anchor: int, beta: float = 1.0) -> torch.Tensor:
    """MotionDirector's temporal loss: the ε-MSE plus the MSE of the appearance-debiased noises
    φ(ε)_i = sqrt(β² + 1)·ε_i − β·ε_anchor, where `anchor` is one frame of the clip (drawn at random per step
    by the caller). Tensors [B, C, F, H, W]; learned-variance channels are dropped as above."""
    pred = pred[:, :target.shape[1]].float()
    target = target.float()
    alpha = (beta ** 2 + 1) ** 0.5
    debias = lambda v: alpha * v - beta * v[:, :, anchor:anchor + 1]  # noqa: E731
    return F.mse_loss(pred, target) + F.mse_loss(debias(pred), debias(target))
