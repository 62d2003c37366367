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

from eval.progress import inner_bar
from eval.search_space import Param
from vmc.families.tuning import TuningMethod
from vmc.losses import appearance_debiased_loss
from vmc.models.lora import inject_dual_lora, lora_names, set_lora_path
from vmc.prediction import as_epsilon


def train_dual_path(unet, video: torch.Tensor, text: torch.Tensor, noise_scheduler, config, names: dict,
                    progress: bool = True) -> dict:
    """video (1, 3, F, H, W) in [-1, 1]; the UNet's output is read as its scheduler's prediction_type says and
    the losses are taken on ε. Returns {"history": [[spatial, temporal] loss per step], "trained"}."""
    from vmc.trainer import _autocast_dtype, store_weights

    device = next(unet.parameters()).device
    amp = _autocast_dtype(config, device)
    params = dict(unet.named_parameters())
    store_weights(unet, {n: params[n] for found in names.values() for n in found}, amp)
    unet.train()
    groups = {path: [params[n] for n in found] for path, found in names.items()}
    opts = {path: torch.optim.AdamW(ps, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                                    eps=config.eps) for path, ps in groups.items()}
    g = torch.Generator(device).manual_seed(config.seed)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (config.steps,), generator=g,
                              device=device)
    alphas, kind = noise_scheduler.alphas_cumprod.to(device), noise_scheduler.config.prediction_type
    video, text = video.to(device, torch.float32), text.to(device, torch.float32)
    frames = video.shape[2]
    for p in params.values():
        p.requires_grad_(False)

    def update(path, loss):
        loss.backward()
        torch.nn.utils.clip_grad_norm_(groups[path], config.max_grad_norm)
        opts[path].step()
        opts[path].zero_grad(set_to_none=True)
        return float(loss.detach())

    history = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        bar = inner_bar(range(config.steps), "md adaptation", progress)
        for step in bar:
            t = timesteps[step:step + 1]
            noise = torch.randn(video.shape, generator=g, device=device)
            noisy = noise_scheduler.add_noise(video, noise, t)
            k, anchor = torch.randint(0, frames, (2,), generator=g, device=device).tolist()
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                set_lora_path(unet, "temporal", False)
                for p in groups["spatial"]:
                    p.requires_grad_(True)
                pred = as_epsilon(unet(noisy[:, :, k:k + 1], t, text).sample.float(), noisy[:, :, k:k + 1],
                                  alphas[t], kind)
            spatial = update("spatial", F.mse_loss(pred, noise[:, :, k:k + 1]))
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                set_lora_path(unet, "temporal", True)
                for p in groups["spatial"]:  # active but frozen in the temporal path: no gradient to compute
                    p.requires_grad_(False)
                pred = as_epsilon(unet(noisy, t, text).sample.float(), noisy, alphas[t], kind)
            temporal = update("temporal", appearance_debiased_loss(pred, noise, anchor))
            history.append([spatial, temporal])
            bar.set_postfix(spatial=f"{spatial:.4f}", temporal=f"{temporal:.4f}")
    unet.float().eval()
    unet.requires_grad_(False)
    return {"history": history, "trained": sorted(names["spatial"] + names["temporal"])}


class MDMethod(TuningMethod):
    name = "md"
    settings_key = "md"
    defaults = {"loss": "appearance_debiased", "rule": "lora", "lr": 5e-4, "steps": 150}
    default_inversion_steps = 50
    own_settings = {"rank": 32, "noise_prior": 0.0}
    own_space = {"rank": Param(32, choices=(8, 16, 32, 64)), "noise_prior": Param(0.0, 0.0, 0.5)}
    start = "prior"

    def extra_meta(self, settings) -> dict:
        return {"lora": {"paths": ["spatial", "temporal"], "inference": ["temporal"]}}

    def prepare_unet(self, unet, settings):
        with torch.random.fork_rng():
            torch.manual_seed(self.train_config().seed)  # reproducible LoRA A initialisation
            inject_dual_lora(unet, settings["rank"])

    def inference_unet(self, unet, settings):
        set_lora_path(unet, "spatial", False)

    def train(self, unet, video, text, noise_scheduler, config) -> dict:
        return train_dual_path(unet, video, text, noise_scheduler, config, lora_names(unet))
