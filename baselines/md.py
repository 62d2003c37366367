"""`md`: MotionDirector's recipe (Zhao et al., 2023) on the project's backbones.

Dual-path LoRA (rank 32) added with `peft` (vmc/models/lora.py): each step draws one timestep and one noise for
the clip; the spatial path denoises one random frame alone with the temporal LoRA off and trains the spatial
LoRA (ε-MSE); the temporal path denoises the whole clip with both paths on and trains only the temporal LoRA,
with the appearance-debiased loss (ε-MSE plus the MSE of √(β²+1)·ε_i − β·ε_anchor, β = 1, anchor a random
frame). The spatial path soaks up the clip's appearance so the temporal path learns its motion. At inference
only the temporal LoRA is kept; sampling starts from fresh noise, or with `noise_prior` p > 0 from
√p·(DDIM inversion of the clip) + √(1−p)·noise. Official: lr 5e-4, 150 steps, AdamW; inference 30 DDIM steps
(here the backbone's own sampler, as for every method).

On the Show-1 family the spatial attention is DeepFloyd-IF style (one attention over the text tokens and the
frame's pixels, no feed-forward), so the spatial LoRA sits on its pixel q/k/v and output projections; the
temporal LoRA sits on the temporal transformers' `attn1`, `attn2` and feed-forward, as in the official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eval.search_space import Param
from eval.settings import Setting
from vmc.families.tuning import TuningMethod
from vmc.losses import appearance_debiased_loss
from vmc.models.lora import inject_dual_lora, lora_names, set_lora_path
from vmc.trainer import train_motion


def dual_path_loss(step) -> None:
    """MotionDirector's step on the training loop (vmc/trainer.py): the spatial path on one random frame with the
    temporal LoRA off, then the temporal path on the clip with both on, training the temporal LoRA alone."""
    unet, noisy, noise = step.unet, step.noisy, step.noise
    k, anchor = torch.randint(0, noisy.shape[2], (2,), generator=step.g, device=noisy.device).tolist()
    set_lora_path(unet, "temporal", False)
    for p in step.parameters("spatial"):
        p.requires_grad_(True)
    pred = step.predict(noisy[:, :, k:k + 1])
    step.update("spatial", F.mse_loss(pred, noise[:, :, k:k + 1]))
    set_lora_path(unet, "temporal", True)
    for p in step.parameters("spatial"):  # active but frozen in the temporal path: no gradient to compute
        p.requires_grad_(False)
    step.update("temporal", appearance_debiased_loss(step.predict(noisy), noise, anchor))


def train_dual_path(unet, video: torch.Tensor, text: torch.Tensor, noise_scheduler, config, names: dict,
                    progress: bool = True) -> dict:
    """video (1, 3, F, H, W) in [-1, 1]; names: {"spatial": […], "temporal": […]} LoRA parameters. Returns
    {"history": [[spatial, temporal] loss per step], "trained"}."""
    params = dict(unet.named_parameters())
    groups = {path: {n: params[n] for n in names[path]} for path in ("spatial", "temporal")}
    return train_motion(unet, video, text, noise_scheduler, config, progress, groups=groups, loss=dual_path_loss,
                        desc="md adaptation")


class MDMethod(TuningMethod):
    name = "md"
    settings_key = "md"
    defaults = {"loss": "appearance_debiased", "rule": "lora", "lr": 5e-4, "steps": 150}
    default_inversion_steps = 50
    own_settings = {"rank": 32, "noise_prior": 0.0}
    own_declared = {"rank": Setting(int, low=1, search=Param(32, choices=(8, 16, 32, 64))),
                    "noise_prior": Setting(float, low=0, high=1, search=Param(0.0, 0.0, 0.5))}
    start = "prior"

    def extra_meta(self, settings) -> dict:
        return {"lora": {"paths": ["spatial", "temporal"], "inference": ["temporal"]}}

    def prepare_unet(self, unet, settings):
        with torch.random.fork_rng():
            torch.manual_seed(self.config.train.seed)  # reproducible LoRA A initialisation
            inject_dual_lora(unet, settings["rank"])

    def inference_unet(self, unet, settings):
        set_lora_path(unet, "spatial", False)

    def train(self, unet, video, text, noise_scheduler, config) -> dict:
        return train_dual_path(unet, video, text, noise_scheduler, config, lora_names(unet))
