"""The training loop of every per-clip tuning recipe, with VMC's step as its default: train the selected
temporal-attention projections on one reference clip. A recipe with another step (MotionDirector's dual path)
gives a loss hook and parameter groups, and keeps the loop's autocast, fp16 loss scaling, clipping, gradient
checkpointing and seeding.

VMC's official settings: AdamW (lr 1e-4, betas 0.9/0.999, weight decay 1e-2, eps 1e-8), 400 steps, batch 1,
gradient clipping 1.0, timesteps uniform in [0, 1000), seed 12345, the UNet in train mode (its temporal
convs' dropout is active, as in the official run). On a GPU, autocast in bf16 (or fp16 with loss scaling)
with fp32 master weights for the trained parameters; fp32 on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from eval.progress import inner_bar
from eval.settings import Setting
from vmc.losses import LOSSES, appearance_debiased_loss, motion_distillation_loss
from vmc.models.checkpointing import MODES, check_mode, set_gradient_checkpointing
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


# what each TrainConfig field may be (eval.settings); the tuning family adds the search ranges of steps and lr
TRAIN_SETTINGS = {
    "steps": Setting(int, low=1), "lr": Setting(float, positive=True),
    "betas": Setting(list, length=2, item=Setting(float, low=0, high=1)), "weight_decay": Setting(float, low=0),
    "eps": Setting(float, positive=True), "max_grad_norm": Setting(float, positive=True, optional=True),
    "seed": Setting(int, low=0), "loss": Setting(str, choices=(*LOSSES, "appearance_debiased")),
    "rule": Setting(str), "mixed_precision": Setting(str, choices=("auto", "bf16", "fp16", "no")),
    "gradient_checkpointing": Setting(str, choices=(*MODES, False, True)),
}


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


class Step:
    """One training step as a loss hook sees it: the clip, its noise and noisy version at timestep `t` (drawn by
    the loop, in this order, from the seeded generator `g`, from which a hook may draw more), `predict` (the UNet's
    ε on a noisy input, under the loop's autocast) and `update` (one parameter group's backward pass, fp16 loss
    scaling, clipping and optimiser step)."""

    def __init__(self, loop: _Loop, t: torch.Tensor, noise: torch.Tensor, noisy: torch.Tensor):
        self.loop, self.t, self.noise, self.noisy = loop, t, noise, noisy
        self.unet, self.video, self.g = loop.unet, loop.video, loop.g
        self.losses: dict[str, float] = {}

    def predict(self, noisy: torch.Tensor) -> torch.Tensor:
        loop = self.loop
        with torch.autocast(noisy.device.type, dtype=loop.amp or torch.float32, enabled=loop.amp is not None):
            pred = loop.unet(noisy, self.t, loop.text).sample
        return as_epsilon(pred.float(), noisy, loop.alphas[self.t], loop.prediction_type)

    def parameters(self, group: str) -> list[nn.Parameter]:
        return self.loop.optimizers[group][2]

    def update(self, group: str, loss: torch.Tensor) -> float:
        opt, scaler, params = self.loop.optimizers[group]
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        if self.loop.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.loop.config.max_grad_norm)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        self.losses[group] = float(loss.detach())
        return self.losses[group]


TRAINED = "loss"  # the one parameter group of motion_loss


def motion_loss(step: Step) -> None:
    """VMC's step (and every recipe's that trains one group with one loss): the configured loss on the clip."""
    config, noisy = step.loop.config, step.noisy
    pred = step.predict(noisy)
    if config.loss == "appearance_debiased":  # its anchor frame, drawn anew each step
        anchor = int(torch.randint(0, step.video.shape[2], (1,), generator=step.g, device=step.video.device))
        loss = appearance_debiased_loss(pred, step.noise, anchor)
    else:
        loss = motion_distillation_loss(pred, step.noise, config.loss, noisy=noisy, clean=step.video,
                                        alphas_cumprod_t=step.loop.alphas[step.t])
    step.update(TRAINED, loss)


class _Loop:
    """What the steps share: the UNet, the clip, the schedule and one AdamW (with its fp16 scaler) per group."""

    def __init__(self, unet, video, text, noise_scheduler, config: TrainConfig, groups: dict, amp, device):
        self.unet, self.config, self.amp = unet, config, amp
        self.video, self.text = video.to(device, torch.float32), text.to(device, torch.float32)
        self.alphas = noise_scheduler.alphas_cumprod.to(device)
        self.prediction_type = noise_scheduler.config.prediction_type
        self.optimizers = {
            name: (torch.optim.AdamW(params.values(), lr=config.lr, betas=config.betas,
                                     weight_decay=config.weight_decay, eps=config.eps),
                   torch.amp.GradScaler(device.type) if amp == torch.float16 else None, list(params.values()))
            for name, params in groups.items()}
        self.g = torch.Generator(device).manual_seed(config.seed)


def train_motion(unet, video: torch.Tensor, text_embeds: torch.Tensor, noise_scheduler, config: TrainConfig,
                 progress: bool = True, parameters: dict[str, nn.Parameter] | None = None,
                 groups: dict[str, dict[str, nn.Parameter]] | None = None, loss: Callable[[Step], None] = motion_loss,
                 desc: str = "vmc adaptation") -> dict:
    """The one training loop of every per-clip tuning recipe. video (1, 3, F, H, W) in [-1, 1]; text_embeds
    (1, L, D) of the training prompt; noise_scheduler: the base model's training noise schedule (add_noise; its
    prediction_type says what the UNet outputs, converted to ε for the loss). What is trained: `groups` {group:
    {name: parameter}}, each with its own optimiser, or `parameters` as the one group of `motion_loss` (default:
    those config.rule selects); the rest is frozen. `loss(step)` computes each step's losses and calls
    step.update(group, loss) for each group (MotionDirector's dual path updates two, one after the other).
    Returns {"history": [loss per step, or [one per group] with several], "trained": names}."""
    device = next(unet.parameters()).device
    if groups is None:
        groups = {TRAINED: select_parameters(unet, config.rule) if parameters is None else parameters}
    selected = {name: p for params in groups.values() for name, p in params.items()}
    unet.requires_grad_(False)
    for p in selected.values():
        p.requires_grad_(True)
    amp = _autocast_dtype(config, device)
    store_weights(unet, selected, amp)
    set_gradient_checkpointing(unet, config.gradient_checkpointing)
    unet.train()
    loop = _Loop(unet, video, text_embeds, noise_scheduler, config, groups, amp, device)
    total = noise_scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, total, (config.steps,), generator=loop.g, device=device)
    history = []
    # dropout draws from the global RNG: seed it too (as the official run does), without touching the caller's
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        bar = inner_bar(range(config.steps), desc, progress)
        for i in bar:
            t = timesteps[i:i + 1]
            noise = torch.randn(loop.video.shape, generator=loop.g, device=device)
            step = Step(loop, t, noise, noise_scheduler.add_noise(loop.video, noise, t))
            loss(step)
            values = list(step.losses.values())
            history.append(values[0] if len(values) == 1 else values)
            bar.set_postfix({k: f"{v:.4f}" for k, v in step.losses.items()})
    unet.float().eval()  # the frozen weights come back exactly (stored narrowed only where lossless)
    unet.requires_grad_(False)
    return {"history": history, "trained": sorted(selected)}
