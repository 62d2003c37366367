"""The per-clip tuning family: adapt the keyframe UNet to the reference clip, then sample the cascade with it.

A recipe (vmc/method.py, baselines/) declares what is particular to it: its official training defaults
(`defaults`, TrainConfig fields, which the backbone's cascade.json overrides under `settings_key`), its own
settings (`own_settings`), what it adds to the UNet (`prepare_unet`, `inference_unet`), which parameters it
trains (`trainable`, or its own `train` loop), and where sampling starts (`start`): the clip's DDIM inversion,
or MotionDirector's noise prior, √p·inversion + √(1−p)·fresh noise (p = `noise_prior`; 0 is fresh noise).

Settings come in layers: the recipe's official `defaults`, then the backbone's cascade.json entry under
`settings_key` (shared by recipes that share a setting, as vmc and vmc-eps do), then its entry under the
recipe's own name when that differs, then what `configure` was given (`eval.run --settings`, `eval.tune`).
`search_space` offers eval.tune the number of steps and the learning rate (both log-spaced around the official
value: steps /4..×2, learning rate /100..×100, since a backbone as small as the shapes world's wants rates far from
Show-1's) and the recipe's `own_space`.

The family owns the rest. The adapter is cached in a folder keyed by the case, every setting and the base
weights: adapter.safetensors (the trained tensors only) and adapter.json (the recipe's settings, the protocol
facts, the loss history), and inverted.safetensors (the clip's inverted noise). The adapted UNet is always
rebuilt from that folder, right after training as when a run resumes or `python -m vmc.generate --adapter`
loads it, so all three sample the same videos.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import torch
import torch.nn.functional as F

from eval.errors import UserError
from eval.manifest import Case
from eval.video import Video
from vmc.families.cascade import DEFAULT_BACKBONE, CascadeMethod


def video_tensor(video: Video, height: int, width: int) -> torch.Tensor:
    """uint8 T×H×W×3 → (1, 3, T, height, width) in [-1, 1], resized without cropping (as the official data)."""
    x = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = F.interpolate(x, (height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(1, 0, 2, 3)[None].clamp(-1, 1)


def cascade_cache():
    from vmc.backbones import tiny_dir

    return tiny_dir().parent / "adapters"


class TuningMethod(CascadeMethod):
    """The base of the per-clip tuning recipes; the module's docstring says what a recipe declares."""

    defaults: dict = {}  # the official recipe as TrainConfig fields, before the backbone's settings
    settings_key: str  # which of the backbone's adaptation settings (cascade.json) apply
    own_settings: dict = {}  # the recipe's settings that are not TrainConfig fields, with their defaults
    own_space: dict = {}  # {own setting: Param} that eval.tune may search
    default_inversion_steps = 75
    start = "inversion"  # sampling starts from the clip's DDIM "inversion", or from a "prior" blend (noise_prior)
    inversion_unet = "adapted"  # the UNet that inverts the clip: the "adapted" one, or the "base" (untrained) one
    trains = True  # False: the start alone, with the backbone's own UNet (the `inversion` baseline)

    # what a recipe fills in ---------------------------------------------------------------------------------
    def prepare_unet(self, unet, settings: dict):
        """Add the recipe's modules to the keyframe UNet, before training and before loading an adapter."""

    def inference_unet(self, unet, settings: dict):
        """Change the adapted UNet before inversion and generation (md drops its spatial LoRA path)."""

    def trainable(self, unet, config) -> dict:
        """{name: parameter} trained by the default loop: those the TrainConfig rule selects."""
        from vmc.parameters import select_parameters

        return select_parameters(unet, config.rule)

    def train(self, unet, video, text, noise_scheduler, config) -> dict:
        """The training loop: {"history": losses, "trained": parameter names}."""
        from vmc.trainer import train_motion

        return train_motion(unet, video, text, noise_scheduler, config, parameters=self.trainable(unet, config))

    def extra_meta(self, settings: dict) -> dict:
        """Facts about the recipe kept in adapter.json for its readers (tav: its attention)."""
        return {}

    # settings -------------------------------------------------------------------------------------------
    @property
    def overrides(self) -> dict:
        own = self.backbone.adaptation_for(self.name) if self.name != self.settings_key else {}
        return {**self.backbone.adaptation_for(self.settings_key), **own, **self.configured}

    def configure(self, settings: dict):
        self.configured = dict(settings)
        self.info()  # checks every name and value

    def search_space(self) -> dict:
        from eval.search_space import Param
        from vmc.trainer import TrainConfig

        if not self.trains:
            return {}
        official = TrainConfig(**self.defaults)
        return {"steps": Param(official.steps, max(1, official.steps // 4), official.steps * 2, log=True, integer=True),
                "lr": Param.around(official.lr, 100), **self.own_space}

    def settings(self) -> dict:
        """The recipe's own settings as the backbone sets them; adapter.json keeps them, since they rebuild the
        UNet and choose the start."""
        values = {}
        for key, default in self.own_settings.items():
            try:
                values[key] = type(default)(self.overrides.get(key, default))
            except (TypeError, ValueError):
                raise UserError(f"{self.name} setting {key} of backbone {self.backbone.name}: expected a "
                                f"{type(default).__name__}, got {self.overrides[key]!r}") from None
        if self.start == "prior" and not 0.0 <= values["noise_prior"] <= 1.0:
            raise UserError(f"{self.name} noise_prior must be in [0, 1], got {values['noise_prior']}")
        return values

    def train_config(self):
        from vmc.trainer import TrainConfig

        overrides = {k: v for k, v in self.overrides.items()
                     if not k.startswith("inversion_") and k not in self.own_settings}
        try:
            config = dataclasses.replace(TrainConfig(**self.defaults), **overrides)
        except (TypeError, ValueError) as e:
            raise UserError(f"{self.name} settings on backbone {self.backbone.name}: {e}") from None
        unet = self.cascade.unet_class()  # a class, nothing loaded: refused before any work starts
        if config.gradient_checkpointing != "none" and not getattr(unet, "_supports_gradient_checkpointing", False):
            raise UserError(f"{self.name} settings on backbone {self.backbone.name}: gradient_checkpointing "
                            f"{config.gradient_checkpointing!r}, which {unet.__name__} does not support: use 'none'")
        return config

    @property
    def inversion_steps(self) -> int:
        return int(self.overrides.get("inversion_steps", self.default_inversion_steps))

    @property
    def inversion_schedule(self) -> str:
        """base (default: the backbone's own betas) or sd15 (the official VMC code's quirk)."""
        return str(self.overrides.get("inversion_schedule", "base"))

    def inversion_scheduler(self, base_scheduler):
        try:
            return self.cascade.inversion_scheduler(self.inversion_schedule, dict(base_scheduler.config))
        except ValueError as e:
            raise UserError(f"{self.name} on backbone {self.backbone.name}: {e}") from None

    def info(self) -> dict:
        trained = {"train": self.train_config().to_dict()} if self.trains else {"trained_parameters": 0}
        return {**super().info(), **trained, "inversion_steps": self.inversion_steps,
                "inversion_schedule": self.inversion_schedule, **self.settings()}

    def needs_inversion(self, settings: dict) -> bool:
        return self.start == "inversion" or settings["noise_prior"] > 0

    # the Method contract ----------------------------------------------------------------------------------
    def adapt(self, case: Case):
        s, config, settings = self.backbone.settings, self.train_config(), self.settings()
        parts = [case.fingerprint(), config.to_dict(), self.backbone.name, self.inversion_steps,
                 self.inversion_schedule, s.num_frames, s.height, s.width, self.backbone.base.fingerprint()]
        if settings:  # a recipe without settings of its own keeps the folders it had before they existed
            parts.append(settings)
        key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
        return self.adapt_into((self.cache_dir or cascade_cache()) / case.id / key[:16], case)

    def adapt_into(self, folder, case: Case) -> dict:
        """Train the adapter into `folder` and invert the clip there, unless the folder has them already."""
        s, cascade, settings = self.backbone.settings, self.cascade, self.settings()
        # every prompt of the case in one encoder load (the cache serves training, inversion and generation)
        cascade.text_embeddings([case.train_prompt, "", *case.target_prompts, s.negative_prompt])
        video = cascade.encode(video_tensor(case.load_reference().sample(s.num_frames), s.height, s.width
                                            ).to(self.device))
        inversion = None
        if self.needs_inversion(settings) and not (folder / "inverted.safetensors").is_file():
            inversion = self.inversion_scheduler(cascade.load_scheduler(self.backbone.base))  # fails before training
            if self.inversion_unet == "base":
                self._invert(folder, self._base_unet(), video, inversion)
        if self.trains and not (folder / "adapter.json").is_file():
            self._train_adapter(folder, video, case, settings)
        unet = self._adapted_unet(folder, settings)
        if inversion is not None and self.inversion_unet == "adapted":
            self._invert(folder, unet, video, inversion)
        return self._state(folder, unet, settings)

    def reload(self, folder) -> dict:
        """The state `adapt` returns, from an adapter folder alone (python -m vmc.generate --adapter)."""
        from vmc.adapter import read_adapter_info

        info = read_adapter_info(folder)
        if info.get("method") != self.name:
            raise UserError(f"{folder}: an adapter of {info.get('method')!r}, not of {self.name}")
        settings = info.get("settings", {})
        if set(self.own_settings) - set(settings):
            raise UserError(f"{folder}: adapter.json lacks the {self.name} settings "
                            f"{', '.join(sorted(set(self.own_settings) - set(settings)))}: adapt again")
        if self.needs_inversion(settings) and not (folder / "inverted.safetensors").is_file():
            raise UserError(f"{folder}: inverted.safetensors is missing (the reference clip's inverted noise)")
        return self._state(folder, self._adapted_unet(folder, settings), settings)

    def start_latents(self, state, seed: int) -> torch.Tensor | None:
        """The keyframes' starting latents: the inverted clip, its blend with seeded noise, or None (fresh noise)."""
        from vmc.inversion import prior_noise

        if self.start == "inversion":
            return state["inverted"]
        p = state["settings"]["noise_prior"]
        return prior_noise(state["inverted"], p, seed) if p > 0 else None

    def generate(self, state, prompt: str, seed: int) -> Video:
        return self._video(self.cascade.run(prompt, seed, init_latents=self.start_latents(state, seed),
                                            keyframe_unet=state["unet"]))

    def protocol(self, state) -> dict:
        return dict(state["protocol"])

    # the family's work ----------------------------------------------------------------------------------
    def _base_unet(self):
        """The backbone's keyframe UNet in fp32 (in eval mode, as loaded)."""
        return self.cascade.load_unet(self.backbone.base).float()

    def _adapted_unet(self, folder, settings: dict):
        """The keyframe UNet with the recipe's modules and the adapter's tensors from `folder`, in fp32, eval mode,
        without gradients."""
        from vmc.adapter import load_adapter

        unet = self._base_unet()
        self.prepare_unet(unet, settings)
        if self.trains:
            load_adapter(folder, unet)
        self.inference_unet(unet, settings)
        return unet.eval().requires_grad_(False)

    def _train_adapter(self, folder, video, case: Case, settings: dict):
        """Train a fresh UNet on the clip and save the adapter with its protocol facts."""
        from diffusers import DDPMScheduler

        from vmc.adapter import save_adapter

        config, cascade = self.train_config(), self.cascade
        unet = self._base_unet()
        self.prepare_unet(unet, settings)
        noise_scheduler = DDPMScheduler.from_config(cascade.load_scheduler(self.backbone.base).config)
        text = cascade.text_embeddings([case.train_prompt])[0]
        cuda = torch.device(self.device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        result = self.train(unet, video, text, noise_scheduler, config)
        params = dict(unet.named_parameters())
        protocol = {"trained_parameters": sum(params[n].numel() for n in result["trained"]),
                    "train_s": round(time.perf_counter() - t0, 3),
                    **({"peak_memory_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
                       if cuda else {})}
        save_adapter(folder, unet, result["trained"], {
            "method": self.name, "backbone": self.arg or DEFAULT_BACKBONE, **self.kind_record(),
            "base": {"id": self.backbone.base.path, "revision": self.backbone.base.revision},
            "rule": config.rule, "loss": config.loss, "train_prompt": case.train_prompt, "case": case.id,
            "target_prompts": list(case.target_prompts), "steps": config.steps, "seed": config.seed,
            "loss_history": result["history"], "train": config.to_dict(), "settings": settings,
            "inversion": {"steps": self.inversion_steps, "schedule": self.inversion_schedule},
            **self.sources_record(), **self.extra_meta(settings), "protocol": protocol})

    def _invert(self, folder, unet, video, scheduler):
        from safetensors.torch import save_file

        from vmc.inversion import ddim_invert

        empty = self.cascade.text_embeddings([""])[0]
        noise = ddim_invert(unet, video, empty, scheduler, self.inversion_steps)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"noise": noise.cpu().contiguous()}, str(folder / "inverted.safetensors"))

    def _state(self, folder, unet, settings: dict) -> dict:
        from safetensors.torch import load_file

        from vmc.adapter import read_adapter_info

        # the noise is always read back from the file, in the file's memory layout: the layout picks the CPU's
        # convolution kernels, so an adapted run and a run resumed from this cache must start from the same bytes
        # laid out the same way to sample the same videos
        inverted = (load_file(str(folder / "inverted.safetensors"))["noise"].to(self.device)
                    if self.needs_inversion(settings) else None)
        protocol = (read_adapter_info(folder).get("protocol", {}) if self.trains
                    else {"trained_parameters": 0, "train_s": 0.0})
        return {"unet": unet.to(self.cascade.dtype), "inverted": inverted, "adapter": str(folder),
                "protocol": protocol, "settings": settings}
