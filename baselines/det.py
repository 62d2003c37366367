"""`det`: DeT ("Decouple and Track: Benchmarking and Improving Video Diffusion Transformers for Motion Transfer",
Shi et al., ICCV 2025), per-clip tuning of a temporal kernel on a video diffusion transformer.

Followed: github.com/Shi-qingyu/DeT at 2a2f4ddd2801a6bbe144d9ae1836f7d0ad3fed3d (src/det/attention_processor.py,
train_cogvideox.py, train_cogvideox.sh, run_cogvideox.py; CogVideoX-5B). The only trained parameters are the
kernels, one per block, on the block's self-attention `attn1`: the video tokens attn1 receives (after the AdaLN
modulation; text excluded) are read per spatial position along the latent frames, [B·h·w, C, F], and
Conv1d(C→r, k 3, padding 1, no bias) → GELU → Conv1d(r→C, the same) is added to the attention's video output
(after `to_out`, before the block's gate and residual), r = 128 (`rank`); conv1 starts N(0, 1), conv2 at zero,
so the untrained kernel changes nothing. The same on Wan 2.1 (the official code has a Wan processor of the same
math) and CogVideoX.

Losses (train_cogvideox.py): t uniform in 0…999; the denoising loss mean[(x̂₀ − x₀)² / (1 − ᾱ_t)] with
x̂₀ = √ᾱ·x_t − √(1−ᾱ)·v̂ (weight 1; computed as the identical v-MSE, see `denoising_loss`: on CogVideoX that is
the official loss, on Wan, in the suite's DDPM coordinates, its flow-matching velocity MSE ‖û − u‖² weighted by
(1−σ)² + σ² ∈ [½, 1]); the dense point-tracking loss, weight 0.1 (`tracking_weight`) at t ≤ 400
(`tracking_max_t`): on the x̂₀ latent, mean over tracks, latent frames t ≥ 1 and channels of
vis_t·(x̂₀[y_t, x_t, t] − x̂₀[y_{t−1}, x_{t−1}, t−1])², at floor(y·h), floor(x·w) of the normalised track positions
on the latent grid, the tracks resampled to the latent frames (video frames sample_indices(T, latent frames):
0, 4, …, 48 of 49). The shipped train_cogvideox.sh leaves `--tracking_loss` off; the paper's method has it, so it
is on here (`tracking_weight` 0 is the shipped script). Tracks: the suite's tracker (`tracker`, eval.metrics.tracks:
`lk`, Lucas–Kanade on a 24×24 grid of the first frame, weight-free; or `cotracker[:MODEL[:GRID]]` from a local
checkout), complete tracks only, so visibility is 1 (official: CoTracker3 online on 100 mask-weighted points,
visibility > 0.9).

Training (train_cogvideox.sh): 500 steps, lr 1e-5 constant, AdamW β (0.9, 0.95), weight decay 1e-4, gradient
clipping 1, seed 0, prompt = the clip's caption (the official AdamW is 8-bit; here the plain one). Inference
(run_cogvideox.py): from fresh noise, the kernels of blocks 0…14 only (`inference_blocks` 15; the official script
installs those and loads with strict=False), the backbone's sampler (official: 50 steps, CFG 6).

DiT-native: on a UNet backbone (Show-1, ModelScope / ZeroScope) it is refused in one line; their separate
temporal layers are what the UNet recipes adapt.
"""

from __future__ import annotations

import json
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eval.errors import UserError
from eval.progress import inner_bar
from eval.search_space import Param
from eval.settings import Setting
from vmc.families.tuning import TuningMethod

SELF_ATTENTION = re.compile(r"transformer\.(?:blocks|transformer_blocks)\.(\d+)\.attn1")
TRACKER = re.compile(r"lk|cotracker(:\w*(:\d+)?)?")
NOT_A_DIT = ("DeT's temporal kernel is made for a video diffusion transformer's joint space-time attention "
             "(DiT-native); this backbone is a UNet, whose separate temporal layers the UNet recipes adapt")


class TemporalKernel(nn.Module):
    """Conv1d(C→r) → GELU → Conv1d(r→C) along the latent frames at each spatial position of (B, F·h·w, C) video
    tokens in (f, h, w) order; conv1 N(0, 1), conv2 zero (DeT's initialisation)."""

    def __init__(self, channels: int, rank: int, frames: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, rank, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(rank, channels, 3, padding=1, bias=False)
        nn.init.normal_(self.conv1.weight)
        nn.init.zeros_(self.conv2.weight)
        self.frames, self.active = frames, True

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, s, c = tokens.shape
        f = self.frames
        x = tokens.reshape(b, f, s // f, c).permute(0, 2, 3, 1).reshape(-1, c, f).to(self.conv1.weight.dtype)
        y = self.conv2(F.gelu(self.conv1(x)))
        return y.reshape(b, s // f, c, f).permute(0, 3, 1, 2).reshape(b, s, c).to(tokens.dtype)


def _add_kernel(module, args, kwargs, output):
    kernel = module.temporal_kernel
    if not kernel.active:
        return output
    extra = kernel(args[0] if args else kwargs["hidden_states"])
    if isinstance(output, tuple):  # CogVideoX: (video, text)
        return (output[0] + extra, *output[1:])
    return output + extra


def add_temporal_kernels(unet, rank: int, frames: int) -> list[str]:
    """A TemporalKernel on every block's attn1 (`<block>.attn1.temporal_kernel`); the attentions' names."""
    names = []
    for name, module in unet.named_modules():
        if SELF_ATTENTION.fullmatch(name):
            channels = module.to_out[0].out_features
            module.temporal_kernel = TemporalKernel(channels, rank, frames)
            module.register_forward_hook(_add_kernel, with_kwargs=True)
            names.append(name)
    if not names:
        raise ValueError(f"{type(unet).__name__} has no transformer blocks with a self-attention attn1")
    return names


def latent_tracks(frames: np.ndarray, latent_frames: int, grid: tuple[int, int], tracker) -> tuple:
    """Tracks of the clip (uint8 T×H×W×3) on the latent grid: (N, latent_frames, 2) long (row, column) and their
    visibility (N, latent_frames), at the video frames sample_indices(T, latent_frames)."""
    from eval.video import sample_indices

    t, h, w = frames.shape[:3]
    size = (tracker.height, max(2, round(tracker.height * w / h)))
    tracks = tracker.track(frames, t, size)[:, sample_indices(t, latent_frames)]  # (N, F, 2) x, y pixels
    rows = np.clip(np.floor(tracks[..., 1] / size[0] * grid[0]), 0, grid[0] - 1)
    cols = np.clip(np.floor(tracks[..., 0] / size[1] * grid[1]), 0, grid[1] - 1)
    positions = torch.from_numpy(np.stack([rows, cols], -1).astype(np.int64))
    return positions, torch.ones(positions.shape[:2])


def tracking_loss(x0: torch.Tensor, positions: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """DeT's tracking loss on x̂₀ (1, C, F, h, w): mean over channels, tracks and frames t ≥ 1 of
    vis_t·(x̂₀ at the track's position in frame t − x̂₀ at its position in frame t − 1)²."""
    frames = torch.arange(x0.shape[2], device=x0.device)
    feats = x0[0][:, frames[None], positions[..., 0], positions[..., 1]]  # (C, N, F)
    return ((feats[:, :, 1:] - feats[:, :, :-1]) ** 2 * visible[None, :, 1:]).mean()


def denoising_loss(v: torch.Tensor, noise: torch.Tensor, clean: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """DeT's mean[(x̂₀ − x₀)² / (1 − ᾱ)], x̂₀ = √ᾱ·x_t − √(1−ᾱ)·v̂, in the identical form mean[(v̂ − v)²], v the
    v-prediction target √ᾱ·ε − √(1−ᾱ)·x₀ (x̂₀ − x₀ = −√(1−ᾱ)·(v̂ − v)), which does not divide by a vanishing 1 − ᾱ."""
    target = alpha.sqrt() * noise - (1 - alpha).sqrt() * clean
    return ((v - target) ** 2).mean()


def train_det(unet, latents, text, noise_scheduler, config, tracks, weight: float, max_t: int,
              progress: bool = True) -> dict:
    """The kernels' training loop; latents (1, C, F, h, w) of the clip. Returns {"history": [[denoising,
    tracking] per step], "trained": names}."""
    from vmc.trainer import _autocast_dtype

    device = next(unet.parameters()).device
    params = {n: p for n, p in unet.named_parameters() if ".temporal_kernel." in n}
    unet.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    unet.train()
    amp = _autocast_dtype(config, device)
    opt = torch.optim.AdamW(params.values(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                            eps=config.eps)
    g = torch.Generator(device).manual_seed(config.seed)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (config.steps,), generator=g,
                              device=device)
    alphas = noise_scheduler.alphas_cumprod.to(device)
    latents, text = latents.to(device, torch.float32), text.to(device, torch.float32)
    if tracks is not None:
        tracks = tuple(v.to(device) for v in tracks)
    history = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        bar = inner_bar(range(config.steps), "det adaptation", progress)
        for step in bar:
            t = timesteps[step:step + 1]
            noise = torch.randn(latents.shape, generator=g, device=device)
            noisy = noise_scheduler.add_noise(latents, noise, t)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                v = unet(noisy, t, text).sample.float()
            a = alphas[t].view(-1, 1, 1, 1, 1)
            x0 = a.sqrt() * noisy - (1 - a).sqrt() * v
            denoising = denoising_loss(v, noise, latents, a)
            tracked = (tracking_loss(x0, *tracks) if tracks is not None and weight > 0 and int(t) <= max_t
                       else torch.zeros((), device=device))
            loss = denoising + weight * tracked
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params.values(), config.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            history.append([float(denoising.detach()), float(tracked.detach())])
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    unet.float().eval()
    unet.requires_grad_(False)
    return {"history": history, "trained": sorted(params)}


class DeTMethod(TuningMethod):
    name = "det"
    unsupported_kinds = {"show1": NOT_A_DIT, "latent": NOT_A_DIT}
    settings_key = "det"
    defaults = {"loss": "det", "rule": "det-kernels", "lr": 1e-5, "steps": 500, "betas": (0.9, 0.95),
                "weight_decay": 1e-4, "max_grad_norm": 1.0, "seed": 0}
    own_settings = {"rank": 128, "tracking_weight": 0.1, "tracking_max_t": 400, "inference_blocks": 15,
                    "tracker": "lk", "noise_prior": 0.0}
    own_declared = {"rank": Setting(int, low=1, search=Param(128, choices=(32, 64, 128, 256))),
                    "tracking_weight": Setting(float, low=0, search=Param(0.1, 0.0, 1.0)),
                    "tracking_max_t": Setting(int, low=0, high=1000), "inference_blocks": Setting(int, low=0),
                    "tracker": Setting(str), "noise_prior": Setting(float, low=0, high=1)}
    start = "prior"  # noise_prior 0: fresh noise, as the official inference

    def configure(self, settings: dict):
        super().configure(settings)
        tracker = self.config.own["tracker"]
        if not TRACKER.fullmatch(tracker):  # the one setting whose form a declaration cannot say
            raise UserError(f"method {self.label}, setting tracker: {json.dumps(tracker)} is not allowed (allowed: lk "
                            "or cotracker[:MODEL[:GRID]])")

    def prepare_unet(self, unet, settings):
        with torch.random.fork_rng():
            torch.manual_seed(self.config.train.seed)  # reproducible N(0, 1) conv1 weights
            add_temporal_kernels(unet, settings["rank"], self.cascade.latent_frames)

    def inference_unet(self, unet, settings):
        for name, module in unet.named_modules():
            if (m := SELF_ATTENTION.fullmatch(name)) and int(m[1]) >= settings["inference_blocks"]:
                module.temporal_kernel.active = False

    def trainable(self, unet, config) -> dict:
        return {n: p for n, p in unet.named_parameters() if ".temporal_kernel." in n}

    def _train_adapter(self, folder, video, case, settings):
        from eval.metrics.tracks import tracker_from_option

        self._tracks, self._tracker = None, None
        if settings["tracking_weight"] > 0:
            tracker = tracker_from_option(settings["tracker"], self.device)
            frames = case.load_reference().sample(self.backbone.settings.num_frames).frames
            self._tracks = latent_tracks(frames, video.shape[2], tuple(video.shape[3:]), tracker)
            self._tracker = tracker.spec()
            if not len(self._tracks[0]):
                self._tracks = None  # every track lost: the denoising loss alone (adapter.json says so)
        super()._train_adapter(folder, video, case, settings)

    def train(self, unet, video, text, noise_scheduler, config) -> dict:
        s = self.config.own
        return train_det(unet, video, text, noise_scheduler, config, self._tracks, s["tracking_weight"],
                         s["tracking_max_t"])

    def extra_meta(self, settings) -> dict:
        tracks = 0 if self._tracks is None else len(self._tracks[0])
        return {"det": {"history": ["denoising", "tracking"], "tracks": tracks, "tracker": self._tracker}}
