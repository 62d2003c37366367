"""VMC adaptation: train the selected temporal-attention projections on one reference clip.

Official settings: AdamW (lr 1e-4, betas 0.9/0.999, weight decay 1e-2, eps 1e-8), 400 steps, batch 1,
gradient clipping 1.0, timesteps uniform in [0, 1000), seed 12345, the UNet in train mode (its temporal
convs' dropout is active, as in the official run). On a GPU, autocast in bf16 (or fp16 with loss scaling)
with fp32 master weights for the trained parameters; fp32 on a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from eval.progress import inner_bar
from vmc.losses import appearance_debiased_loss, motion_distillation_loss
from vmc.models.checkpointing import check_mode, set_gradient_checkpointing
from vmc.parameters import select_parameters
from vmc.prediction import as_epsilon


@dataclass
class TrainConfig:
    steps: int = 400
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    eps: float = 1e-8
    max_grad_norm: float | None = 1.0  # None: no clipping (MotionInversion's official loop)
    seed: int = 12345
    loss: str = "cosine"
    rule: str = "qkv"
    mixed_precision: str = "auto"  # auto: bf16 on GPU, none on CPU; or bf16, fp16, no
    gradient_checkpointing: str = "none"  # or convs, full (vmc/models/checkpointing.py)

    def __post_init__(self):
        if isinstance(self.gradient_checkpointing, bool):  # as settings and adapters written before the modes say it
            self.gradient_checkpointing = "full" if self.gradient_checkpointing else "none"
        check_mode(self.gradient_checkpointing)

    def to_dict(self) -> dict:
        return asdict(self)


def _autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    choice = config.mixed_precision
    if choice == "auto":
        choice = "bf16" if device.type == "cuda" else "no"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "no": None}[choice]


def store_weights(unet: nn.Module, trained: dict[str, nn.Parameter], amp: torch.dtype | None):
    """Trained parameters in fp32 (master weights); with autocast, every frozen conv / linear weight and bias in
    a 16-bit dtype that holds it exactly (the autocast dtype, else the other one: weights loaded from an fp16
    checkpoint stay fp16 under bf16 autocast), else fp32. Autocast rounds those weights to its dtype at each
    forward anyway, so the numbers are the same as over fp32 weights with half the memory, and `unet.float()`
    afterwards gives back the very same values; norms and embeddings stay fp32, as autocast computes with them
    in fp32."""
    keep = {id(p) for p in trained.values()}
    frozen = {id(p) for m in unet.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
              for p in m.parameters(recurse=False) if id(p) not in keep} if amp is not None else set()
    narrow = [amp] + [d for d in (torch.float16, torch.bfloat16) if d != amp]
    for p in unet.parameters():
        value = p.data.float()
        if id(p) in frozen:
            value = next((low for low in (value.to(d) for d in narrow) if torch.equal(low.float(), value)), value)
        if value is not p.data:
            p.data = value


def _step(unet, opt, scaler, amp, selected, noise_scheduler, video, text, t, alphas, g, config) -> float:
    noise = torch.randn(video.shape, generator=g, device=video.device)
    noisy = noise_scheduler.add_noise(video, noise, t)
    with torch.autocast(video.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        pred = unet(noisy, t, text).sample
    pred = as_epsilon(pred.float(), noisy, alphas[t], noise_scheduler.config.prediction_type)
    if config.loss == "appearance_debiased":  # its anchor frame, drawn anew each step
        anchor = int(torch.randint(0, video.shape[2], (1,), generator=g, device=video.device))
        loss = appearance_debiased_loss(pred, noise, anchor)
    else:
        loss = motion_distillation_loss(pred, noise, config.loss, noisy=noisy, clean=video,
                                        alphas_cumprod_t=alphas[t])
    if scaler:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(selected.values(), config.max_grad_norm)
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def train_motion(unet, video: torch.Tensor, text_embeds: torch.Tensor, noise_scheduler, config: TrainConfig,
                 progress: bool = True, parameters: dict[str, nn.Parameter] | None = None) -> dict:
    """video (1, 3, F, H, W) in [-1, 1]; text_embeds (1, L, D) of the training prompt; noise_scheduler: the
    base model's training noise schedule (add_noise; its prediction_type says what the UNet outputs, converted
    to ε for the loss); parameters: {name: parameter} to train (default: those config.rule selects), the rest
    frozen. Returns {"history": [loss per step], "trained": names}."""
    device = next(unet.parameters()).device
    selected = select_parameters(unet, config.rule) if parameters is None else parameters
    unet.requires_grad_(False)
    for p in selected.values():
        p.requires_grad_(True)
    amp = _autocast_dtype(config, device)
    store_weights(unet, selected, amp)
    set_gradient_checkpointing(unet, config.gradient_checkpointing)
    unet.train()
    opt = torch.optim.AdamW(selected.values(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                            eps=config.eps)
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    g = torch.Generator(device).manual_seed(config.seed)
    total = noise_scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, total, (config.steps,), generator=g, device=device)
    alphas = noise_scheduler.alphas_cumprod.to(device)
    video, text = video.to(device, torch.float32), text_embeds.to(device, torch.float32)
    history = []
    # dropout draws from the global RNG: seed it too (as the official run does), without touching the caller's
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        bar = inner_bar(range(config.steps), "vmc adaptation", progress)
        for step in bar:
            t = timesteps[step:step + 1]
            history.append(_step(unet, opt, scaler, amp, selected, noise_scheduler, video, text, t, alphas, g, config))
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    unet.float().eval()  # the frozen weights come back exactly (stored narrowed only where lossless)
    unet.requires_grad_(False)
    return {"history": history, "trained": sorted(selected)}
