"""The per-clip tuning family: adapt the keyframe UNet to the reference clip, then sample the cascade with it.

A recipe (vmc/method.py, baselines/) declares what is particular to it: its official training defaults
(`defaults`, TrainConfig fields, which the backbone's cascade.json overrides under `settings_key`), its own
settings (`own_settings`), what it adds to the UNet (`prepare_unet`, `inference_unet`), which parameters it
trains (`trainable`, or its own `train` loop), and where sampling starts (`start`): the clip's DDIM inversion,
or MotionDirector's noise prior, √p·inversion + √(1−p)·fresh noise (p = `noise_prior`; 0 is fresh noise).

Settings come in layers: the recipe's official `defaults`, then the backbone's cascade.json entry under
`settings_key` (shared by recipes that share a setting, as vmc and vmc-eps do), then its entry under the
recipe's own name when that differs, then what `configure` was given (`eval.run --settings`, `eval.tune`).
`configure` builds the configuration from them once, each layer checked against the declarations (`declared`:
the training loop's settings, the inversion's and the recipe's `own_declared`), and everything reads it from
there. `search_space` offers eval.tune the number of steps and the learning rate (both log-spaced around the
official value: steps /4..×2, learning rate /100..×100, since a backbone as small as the shapes world's wants
rates far from Show-1's) and what the recipe's own declarations search.

The family owns the rest. The adapter is cached in a folder keyed by the case, every setting and the base
weights: adapter.safetensors (the trained tensors only) and adapter.json (the recipe's settings, the protocol
facts, the loss history), and inverted.safetensors (the clip's inverted noise), each written atomically; a file
found torn or corrupt there is made again. The adapted UNet is always
rebuilt from that folder, right after training as when a run resumes or `python -m vmc.generate --adapter`
loads it, so all three sample the same videos.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time

import torch
import torch.nn.functional as F

from eval.errors import UserError
from eval.manifest import Case
from eval.settings import check_settings
from eval.video import Video
from vmc.families.cascade import DEFAULT_BACKBONE, CascadeMethod
from vmc.tensor_files import CorruptFile, load_tensors, save_tensors


def video_tensor(video: Video, height: int, width: int) -> torch.Tensor:
    """uint8 T×H×W×3 → (1, 3, T, height, width) in [-1, 1], resized without cropping (as the official data)."""
    x = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = F.interpolate(x, (height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.permute(1, 0, 2, 3)[None].clamp(-1, 1)


def drop_corrupt(path) -> bool:
    """Delete a cache file that is torn or corrupt, saying so in one line, so that the run makes it again."""
    if not path.is_file():
        return False
    try:
        load_tensors(path)
        return False
    except CorruptFile as e:
        print(f"note: {e}; making it again", file=sys.stderr)
        path.unlink()
        return True


def cascade_cache():
    from vmc.backbones import tiny_dir

    return tiny_dir().parent / "adapters"


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """A recipe's configuration as `configure` builds it: the training loop's, its own settings, its inversion."""
    train: object  # vmc.trainer.TrainConfig
    own: dict
    inversion_steps: int
    inversion_schedule: str


class TuningMethod(CascadeMethod):
    """The base of the per-clip tuning recipes; the module's docstring says what a recipe declares."""

    _config: TuningConfig | None = None

    defaults: dict = {}  # the official recipe as TrainConfig fields, before the backbone's settings
    settings_key: str  # which of the backbone's adaptation settings (cascade.json) apply
    own_settings: dict = {}  # the recipe's settings that are not TrainConfig fields, with their defaults
    own_declared: dict = {}  # {own setting: eval.settings.Setting}: its type, range and search range
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
    def declared(self) -> dict:
        """{setting: Setting} this recipe takes: the training loop's, the inversion's and its own; steps and the
        learning rate searched log-spaced around the official values."""
        from eval.search_space import Param
        from eval.settings import Setting
        from vmc.parameters import RULES
        from vmc.trainer import TRAIN_SETTINGS, TrainConfig

        official = TrainConfig(**self.defaults)
        declared = {**TRAIN_SETTINGS, "inversion_steps": Setting(int, low=1),
                    "inversion_schedule": Setting(str, choices=("base", "sd15")), **self.own_declared}
        declared["rule"] = Setting(str, choices=tuple(RULES) if official.rule in RULES else (official.rule,))
        if self.trains:
            declared["steps"] = Setting(int, low=1, search=Param(
                official.steps, max(1, official.steps // 4), official.steps * 2, log=True, integer=True))
            declared["lr"] = Setting(float, positive=True, search=Param.around(official.lr, 100))
        return declared

    def configure(self, settings: dict):
        """Build the recipe's configuration, once: its official `defaults`, the backbone's cascade.json entry
        under `settings_key`, then the one under its own name when that differs, then `settings`, each layer
        checked against the declarations."""
        from vmc.trainer import TrainConfig

        declared, backbone = self.declared(), self.backbone
        layers = [(f"backbone {backbone.name} (cascade.json, entry {key}), method {self.label}",
                   backbone.adaptation_for(key)) for key in dict.fromkeys((self.settings_key, self.name))]
        merged = {}
        for where, given in [*layers, (f"method {self.label}", settings)]:
            check_settings(given, declared, where)
            merged.update(given)
        own = {key: type(default)(merged.get(key, default)) for key, default in self.own_settings.items()}
        train = dataclasses.replace(TrainConfig(**self.defaults), **{
            k: v for k, v in merged.items() if not k.startswith("inversion_") and k not in self.own_settings})
        unet = self.cascade.unet_class()  # a class, nothing loaded: refused before any work starts
        if train.gradient_checkpointing != "none" and not getattr(unet, "_supports_gradient_checkpointing", False):
            raise UserError(f"method {self.label} on backbone {backbone.name}: gradient_checkpointing "
                            f"{train.gradient_checkpointing!r}, which {unet.__name__} does not support: use 'none'")
        self.configured = dict(settings)
        self._config = TuningConfig(train, own, int(merged.get("inversion_steps", self.default_inversion_steps)),
                                    merged.get("inversion_schedule", "base"))

    @property
    def config(self) -> TuningConfig:
        """The configuration `configure` built (from the defaults and the backbone's alone until it is called)."""
        if self._config is None:
            self.configure({})
        return self._config

    def search_space(self) -> dict:
        return {k: s.search for k, s in self.declared().items() if s.search is not None}

    def inversion_scheduler(self, base_scheduler):
        try:
            return self.cascade.inversion_scheduler(self.config.inversion_schedule, dict(base_scheduler.config))
        except ValueError as e:
            raise UserError(f"{self.name} on backbone {self.backbone.name}: {e}") from None

    def info(self) -> dict:
        config = self.config
        trained = {"train": config.train.to_dict()} if self.trains else {"trained_parameters": 0}
        return {**super().info(), **trained, "inversion_steps": config.inversion_steps,
                "inversion_schedule": config.inversion_schedule, **config.own}

    def needs_inversion(self, settings: dict) -> bool:
        return self.start == "inversion" or settings["noise_prior"] > 0

    # the Method contract ----------------------------------------------------------------------------------
    def adapt(self, case: Case):
        s, config = self.backbone.settings, self.config
        settings = config.own
        parts = [case.fingerprint(), config.train.to_dict(), self.backbone.name, config.inversion_steps,
                 config.inversion_schedule, s.num_frames, s.height, s.width, self.backbone.base.fingerprint()]
        if settings:  # a recipe without settings of its own keeps the folders it had before they existed
            parts.append(settings)
        key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
        return self.adapt_into((self.cache_dir or cascade_cache()) / case.id / key[:16], case)

    def adapt_into(self, folder, case: Case) -> dict:
        """Train the adapter into `folder` and invert the clip there, unless the folder has them already."""
        s, cascade, settings = self.backbone.settings, self.cascade, self.config.own
        drop_corrupt(folder / "inverted.safetensors")
        if drop_corrupt(folder / "adapter.safetensors"):
            (folder / "adapter.json").unlink(missing_ok=True)
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

        config, cascade = self.config, self.cascade
        unet = self._base_unet()
        self.prepare_unet(unet, settings)
        noise_scheduler = DDPMScheduler.from_config(cascade.load_scheduler(self.backbone.base).config)
        text = cascade.text_embeddings([case.train_prompt])[0]
        cuda = torch.device(self.device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        result = self.train(unet, video, text, noise_scheduler, config.train)
        params = dict(unet.named_parameters())
        protocol = {"trained_parameters": sum(params[n].numel() for n in result["trained"]),
                    "train_s": round(time.perf_counter() - t0, 3),
                    **({"peak_memory_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
                       if cuda else {})}
        save_adapter(folder, unet, result["trained"], {
            "method": self.name, "backbone": self.arg or DEFAULT_BACKBONE, **self.kind_record(),
            "base": {"id": self.backbone.base.path, "revision": self.backbone.base.revision},
            "rule": config.train.rule, "loss": config.train.loss, "train_prompt": case.train_prompt, "case": case.id,
            "target_prompts": list(case.target_prompts), "steps": config.train.steps, "seed": config.train.seed,
            "loss_history": result["history"], "train": config.train.to_dict(), "settings": settings,
            "inversion": {"steps": config.inversion_steps, "schedule": config.inversion_schedule},
            **self.sources_record(), **self.extra_meta(settings), "protocol": protocol})

    def _invert(self, folder, unet, video, scheduler):
        from vmc.inversion import ddim_invert

        empty = self.cascade.text_embeddings([""])[0]
        noise = ddim_invert(unet, video, empty, scheduler, self.config.inversion_steps)
        folder.mkdir(parents=True, exist_ok=True)
        save_tensors({"noise": noise}, folder / "inverted.safetensors")

    def _state(self, folder, unet, settings: dict) -> dict:
        from vmc.adapter import read_adapter_info

        # the noise is always read back from the file, in the file's memory layout: the layout picks the CPU's
        # convolution kernels, so an adapted run and a run resumed from this cache must start from the same bytes
        # laid out the same way to sample the same videos
        inverted = (load_tensors(folder / "inverted.safetensors")["noise"].to(self.device)
                    if self.needs_inversion(settings) else None)
        protocol = (read_adapter_info(folder).get("protocol", {}) if self.trains
                    else {"trained_parameters": 0, "train_s": 0.0})
        return {"unet": unet.to(self.cascade.dtype), "inverted": inverted, "adapter": str(folder),
                "protocol": protocol, "settings": settings}
