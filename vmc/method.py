"""The methods `vmc`, `vmc-eps` and `t2v` for `eval.run`, named `vmc[:BACKBONE]` (default: the shapes world).

vmc: adapt the keyframe UNet's temporal attention to the reference clip with the motion distillation loss
(cached as an adapter under the run's cache, keyed by the case and the settings), DDIM-invert the clip with
the adapted UNet (empty prompt), then run the cascade from that noise with the target prompt.
vmc-eps: the same with the plain ε-MSE loss (the paper's ablation). t2v: the unadapted backbone from pure
noise (the lower bound for motion).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import torch
import torch.nn.functional as F

from eval.manifest import Case
from eval.methods import Method
from eval.video import Video

DEFAULT_BACKBONE = "shapes"


def video_tensor(video: Video, height: int, width: int) -> torch.Tensor:
    """uint8 T×H×W×3 → (1, 3, T, height, width) in [-1, 1], resized without cropping (as the official data)."""
    x = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = F.interpolate(x, (height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(1, 0, 2, 3)[None].clamp(-1, 1)


class _CascadeMethod(Method):
    takes_argument = True
    compute_bound = True

    def __init__(self, arg: str | None = None, device: str | None = None):
        super().__init__(arg, device)
        from vmc.backbones import resolve_backbone

        self.backbone = resolve_backbone(arg or os.environ.get("VMC_BACKBONE", DEFAULT_BACKBONE))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._cascade = None

    @property
    def label(self) -> str:
        return self.name if self.arg is None else f"{self.name}-{self.backbone.name}"

    @property
    def cascade(self):
        from vmc.pipelines.cascade import Show1Cascade

        if self._cascade is None:
            self._cascade = Show1Cascade(self.backbone, self.device)
        return self._cascade

    def info(self) -> dict:
        """With every cascade setting and the weights' digest, so that a run directory refuses videos made with
        other settings or other weights."""
        return {**super().info(), "backbone": self.backbone.name, "weights": self.backbone.fingerprint(),
                "settings": dataclasses.asdict(self.backbone.settings), **self.sources_record()}

    def sources_record(self) -> dict:
        """{"sources": where each stage comes from} for a backbone assembled from several places, else {}: a
        profile or a cascade directory is named by itself, and run folders recorded before this key stay resumable."""
        from vmc.backbones import sources

        return {"sources": sources(self.backbone)} if self.backbone.assembled else {}

    def _video(self, outputs: dict) -> Video:
        from vmc.pipelines.cascade import to_uint8

        last = list(outputs)[-1]
        return Video(to_uint8(outputs[last][0]), 2.0 if last == "keyframes" else 8.0)


class T2VMethod(_CascadeMethod):
    name = "t2v"

    def info(self) -> dict:
        return {**super().info(), "trained_parameters": 0}

    def adapt(self, case: Case):
        self.cascade.t5_embeddings([*case.target_prompts, self.backbone.settings.negative_prompt])  # one encoder load
        return None

    def generate(self, state, prompt: str, seed: int) -> Video:
        return self._video(self.cascade.run(prompt, seed))

    def protocol(self, state) -> dict:
        return {"trained_parameters": 0, "train_s": 0.0}


class VMCMethod(_CascadeMethod):
    """Also the base of the other per-clip tuning methods (vmc-eps, tav): they differ in the training
    defaults, the parameters trained and, for tav, the attention used."""

    name = "vmc"
    defaults: dict = {"loss": "cosine"}  # TrainConfig fields (the official recipe), before the backbone's overrides
    default_inversion_steps = 75
    attention = "full"  # the keyframe UNet's spatial attention while adapting and generating
    trains = True  # False: inversion only (the `inversion` baseline)
    inverts = True  # False: generation starts from pure noise (no DDIM inversion of the reference)

    settings_key = "vmc"  # which of the backbone's adaptation settings (cascade.json) apply
    own_settings: tuple = ()  # settings of the method itself among them, not TrainConfig fields (md: rank)

    @property
    def overrides(self) -> dict:
        return self.backbone.adaptation_for(self.settings_key)

    def prepare_unet(self, unet):
        """Change the keyframe UNet before training and loading (tav makes its attention sparse-causal)."""
        return unet

    def inference_unet(self, unet):
        """Change the adapted UNet before inversion and generation (md drops its spatial LoRA path)."""
        return unet

    def train_config(self):
        from vmc.trainer import TrainConfig

        overrides = {k: v for k, v in self.overrides.items()
                     if not k.startswith("inversion_") and k not in self.own_settings}
        try:
            return dataclasses.replace(TrainConfig(**self.defaults), **overrides)
        except (TypeError, ValueError) as e:
            from eval.errors import UserError

            raise UserError(f"adaptation settings of backbone {self.backbone.name}: {e}") from None

    def info(self) -> dict:
        trained = {"train": self.train_config().to_dict()} if self.trains else {"trained_parameters": 0}
        return {**super().info(), **trained, "inversion_steps": self.inversion_steps,
                "inversion_schedule": self.inversion_schedule}

    @property
    def inversion_steps(self) -> int:
        return int(self.overrides.get("inversion_steps", self.default_inversion_steps))

    @property
    def inversion_schedule(self) -> str:
        """base (default: the backbone's own betas) or sd15 (the official code's quirk)."""
        return str(self.overrides.get("inversion_schedule", "base"))

    def adapt(self, case: Case):
        s, config = self.backbone.settings, self.train_config()
        key = hashlib.sha256(json.dumps([case.fingerprint(), config.to_dict(), self.backbone.name, self.inversion_steps,
                                         self.inversion_schedule, s.num_frames, s.height, s.width,
                                         self.backbone.base.fingerprint()]).encode()).hexdigest()
        return self.adapt_into((self.cache_dir or cascade_cache()) / case.id / key[:16], case)

    def adapt_into(self, folder, case: Case) -> dict:
        """Train (or reuse) the adapter in `folder` and the DDIM-inverted noise of the reference clip."""
        from diffusers import DDPMScheduler
        from safetensors.torch import load_file, save_file

        from vmc.adapter import load_adapter
        from vmc.inversion import ddim_invert

        s, cascade = self.backbone.settings, self.cascade
        # every prompt of the case in one encoder load (the cache serves training, inversion and generation)
        cascade.t5_embeddings([case.train_prompt, "", *case.target_prompts, s.negative_prompt])
        video = video_tensor(case.load_reference().sample(s.num_frames), s.height, s.width).to(self.device)
        unet = self.prepare_unet(cascade.load_unet(self.backbone.base).float())
        protocol = {"trained_parameters": 0, "train_s": 0.0}
        done = folder / ("inverted.safetensors" if self.inverts else "adapter.json")
        if done.is_file():
            if self.trains:
                protocol = load_adapter(folder, unet).get("protocol", {})
            unet = self.inference_unet(unet)
        else:
            base_scheduler = cascade.load_scheduler(self.backbone.base)
            inversion = self.inversion_scheduler(base_scheduler) if self.inverts else None  # fails before training
            if self.trains:
                protocol = self.train_adapter(folder, unet, video, case,
                                              DDPMScheduler.from_config(base_scheduler.config))
            unet = self.inference_unet(unet)
            folder.mkdir(parents=True, exist_ok=True)
            if self.inverts:
                empty = cascade.t5_embeddings([""])[0]
                noise = ddim_invert(unet.eval(), video, empty, inversion, self.inversion_steps)
                save_file({"noise": noise.cpu().contiguous()}, str(folder / "inverted.safetensors"))
        unet.eval().requires_grad_(False)
        # the noise is always read back from the file, in the file's memory layout: the layout picks the CPU's
        # convolution kernels, so an adapted run and a run resumed from this cache must start from the same bytes
        # laid out the same way to sample the same videos
        inverted = load_file(str(folder / "inverted.safetensors"))["noise"].to(self.device) if self.inverts else None
        return {"unet": unet.to(cascade.dtype), "inverted": inverted, "adapter": str(folder), "protocol": protocol}

    def inversion_scheduler(self, base_scheduler):
        from eval.errors import UserError
        from vmc.inversion import inversion_scheduler

        try:
            return inversion_scheduler(self.inversion_schedule, dict(base_scheduler.config))
        except ValueError as e:
            raise UserError(f"{self.name} on backbone {self.backbone.name}: {e}") from None

    def protocol(self, state) -> dict:
        return dict(state["protocol"])

    def extra_meta(self) -> dict:
        """Method-specific facts kept in adapter.json (md: its LoRA settings)."""
        return {}

    def run_training(self, unet, video, text, noise_scheduler, config) -> dict:
        """The training loop: {"history": losses, "trained": parameter names} (md has its own dual path)."""
        from vmc.trainer import train_motion

        return train_motion(unet, video, text, noise_scheduler, config)

    def train_adapter(self, folder, unet, video, case: Case, noise_scheduler) -> dict:
        """Train, save the adapter, and return its protocol facts (also kept in adapter.json)."""
        import time

        from vmc.adapter import save_adapter

        config = self.train_config()
        text = self.cascade.t5_embeddings([case.train_prompt])[0]
        cuda = torch.device(self.device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        result = self.run_training(unet, video, text, noise_scheduler, config)
        protocol = {"trained_parameters": sum(dict(unet.named_parameters())[n].numel() for n in result["trained"]),
                    "train_s": round(time.perf_counter() - t0, 3),
                    **({"peak_memory_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
                       if cuda else {})}
        save_adapter(folder, unet, result["trained"], {
            "method": self.name, "attention": self.attention, "backbone": self.arg or DEFAULT_BACKBONE,
            "base": {"id": self.backbone.base.path, "revision": self.backbone.base.revision},
            "rule": config.rule, "loss": config.loss, "train_prompt": case.train_prompt, "case": case.id,
            "target_prompts": list(case.target_prompts), "steps": config.steps, "seed": config.seed,
            "loss_history": result["history"], "train": config.to_dict(),
            "inversion": {"steps": self.inversion_steps, "schedule": self.inversion_schedule},
            **self.sources_record(), **self.extra_meta(), "protocol": protocol})
        return protocol

    def generate(self, state, prompt: str, seed: int) -> Video:
        return self._video(self.cascade.run(prompt, seed, init_latents=state["inverted"], keyframe_unet=state["unet"]))


class VMCEpsMethod(VMCMethod):
    name = "vmc-eps"
    defaults = {"loss": "eps_mse"}


def cascade_cache():
    from vmc.backbones import tiny_dir

    return tiny_dir().parent / "adapters"
