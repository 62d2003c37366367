"""Training-free guidance of the keyframe sampling: the `Guidance` protocol the keyframe sampler calls, and
`GuidanceMethod`, the base of the methods built on it (motionclone, dmt).

Such a method trains nothing. adapt() DDIM-inverts the reference clip with its caption (as both official codes
do) through the keyframe sampler's own noise levels, keeps the inverted sample at each level it guides, and reads
the reference's features there; generate() runs the cascade with a Guidance built from them. The inverted samples
are cached under the run's cache like an adapter (keyed by the case, the method's settings, the sampling settings
that fix the levels, and the base weights); the features are read from them in adapt(), once per case, because
for Show-1 they are far larger than the samples (MotionClone's top-1 attention entries: about 0.7 GB per case at
75 steps, against 11 MB of samples) and cost one truncated UNet pass per guided level to read. Protocol facts:
0 trained parameters, train_s 0, features_s (inversion and reading); guidance makes generation the larger cost.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from abc import ABC, abstractmethod

import torch

from eval.manifest import Case
from eval.settings import check_settings
from eval.video import Video
from vmc.families.cascade import CascadeMethod
from vmc.families.tuning import cascade_cache, drop_corrupt, video_tensor
from vmc.tensor_files import load_tensors, save_tensors


class Guidance(ABC):
    """What steers the keyframe sampler (vmc.pipelines.keyframes) at the sampling steps in `steps`.

    `attention_probs` names the attention modules whose probabilities guide() reads and `outputs` the modules
    whose outputs it reads; `timesteps[i]` is the timestep of sampling step i the reference was read at."""

    attention_probs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def __init__(self, steps, timesteps):
        self.steps, self.timesteps = frozenset(steps), list(timesteps)

    def wants(self, step: int) -> bool:
        return step in self.steps

    @abstractmethod
    def guide(self, x: torch.Tensor, t, step: int, read) -> torch.Tensor:
        """The corrected sample. x: the noisy sample at timestep t, sampling step `step`; read(sample) runs the UNet
        on a sample (target prompt) with gradients and returns {name: feature} for the names above."""

    def check_level(self, t, step: int):
        if int(t) != self.timesteps[step]:
            raise ValueError(f"sampling step {step} is at timestep {int(t)}, but the reference was read at "
                             f"{self.timesteps[step]}: the sampler's schedule changed")


def guided_steps(num_steps: int, share: float) -> int:
    """How many of the first sampling steps a share guides (DMT's official rule: all but ⌊(1 − share)·steps⌋)."""
    return math.ceil(round(share * num_steps, 9))


class GuidanceMethod(CascadeMethod):
    """Subclasses set `defaults` (the official settings; the backbone's cascade.json entry under the method's
    name overrides them) and implement read_reference and make_guidance (and start, to start from other than
    pure noise)."""

    defaults: dict = {}  # with "guided_share": the share of the first sampling steps that are guided
    declared_settings: dict = {}  # {setting: eval.settings.Setting} for each of `defaults`: type, range, search
    _settings: dict | None = None

    @property
    def settings(self) -> dict:
        """The configuration `configure` built (from the defaults and the backbone's alone until it is called)."""
        if self._settings is None:
            self.configure({})
        return self._settings

    def configure(self, settings: dict):
        """Build the settings once: the official `defaults`, then the backbone's cascade.json entry under the
        method's name, then `settings`, each layer checked against the declarations."""
        merged = dict(self.defaults)
        for where, given in ((f"backbone {self.backbone.name} (cascade.json, entry {self.name}), method {self.label}",
                              self.backbone.adaptation_for(self.name)), (f"method {self.label}", settings)):
            check_settings(given, self.declared(), where)
            merged.update(given)
        self.configured, self._settings = dict(settings), merged

    def declared(self) -> dict:
        return dict(self.declared_settings)

    def search_space(self) -> dict:
        return {k: s.search for k, s in self.declared_settings.items() if s.search is not None}

    def info(self) -> dict:
        return {**super().info(), "trained_parameters": 0, "guidance": self.settings}

    def timesteps(self) -> list[int]:
        """The keyframe sampler's timesteps, first to last."""
        scheduler = self.cascade.load_scheduler(self.backbone.base)
        scheduler.set_timesteps(self.backbone.settings.keyframe_steps)
        return [int(t) for t in scheduler.timesteps]

    @property
    def num_guided(self) -> int:
        return guided_steps(self.backbone.settings.keyframe_steps, self.settings["guided_share"])

    def adapt(self, case: Case) -> dict:
        s, cascade = self.backbone.settings, self.cascade
        key = hashlib.sha256(json.dumps([case.fingerprint(), self.name, self.settings, self.backbone.name,
                                         s.num_frames, s.height, s.width, s.keyframe_steps,
                                         self.backbone.base.fingerprint()]).encode()).hexdigest()
        folder = (self.cache_dir or cascade_cache()) / case.id / key[:16]
        cascade.text_embeddings([case.train_prompt, *case.target_prompts, s.negative_prompt])  # one encoder load
        unet = cascade.stage_unet(self.backbone.base)
        if drop_corrupt(folder / "reference.safetensors"):
            (folder / "reference.json").unlink(missing_ok=True)
        if not (folder / "reference.json").is_file():
            self.invert_reference(case, unet, folder)
        meta = json.loads((folder / "reference.json").read_text())
        # read back from the file, so that a fresh and a cached adaptation continue from the same bytes
        latents = {int(k): v.to(self.device) for k, v in load_tensors(folder / "reference.safetensors").items()}
        t0 = time.perf_counter()
        with torch.no_grad():
            reference = self.read_reference(unet, latents, cascade.text_embeddings([case.train_prompt])[0])
        cascade.done_with(unet)
        features_s = meta["inversion_s"] + time.perf_counter() - t0
        return {"reference": reference, "cache": str(folder),
                "protocol": {"trained_parameters": 0, "train_s": 0.0, "features_s": round(features_s, 3)}}

    def invert_reference(self, case: Case, unet, folder):
        """DDIM-invert the reference (its caption as the prompt) through the sampler's levels (and, with
        `inversion_steps`, that many more, evenly spaced: the official codes invert through all 1000), and save
        the inverted sample at each guided level (and at the first, where dmt starts)."""
        from eval.results import atomic_write_text
        from vmc.inversion import ddim_invert

        s, cascade = self.backbone.settings, self.cascade
        t0 = time.perf_counter()
        timesteps = self.timesteps()
        levels = set(timesteps)
        if self.settings.get("inversion_steps"):
            levels |= {round(float(t)) for t in torch.linspace(0, 999, self.settings["inversion_steps"])}
        video = cascade.encode(video_tensor(case.load_reference().sample(s.num_frames), s.height, s.width
                                            ).to(self.device))
        kept: dict[int, torch.Tensor] = {}
        scheduler = cascade.inversion_scheduler("base", dict(cascade.load_scheduler(self.backbone.base).config))
        ddim_invert(unet, video, cascade.text_embeddings([case.train_prompt])[0], scheduler, timesteps=levels,
                    keep=kept)
        folder.mkdir(parents=True, exist_ok=True)
        save_tensors({str(t): kept[t] for t in timesteps[:max(self.num_guided, 1)]}, folder / "reference.safetensors")
        # the marker of a finished inversion, written atomically: a kill never leaves half of it for a resume
        atomic_write_text(folder / "reference.json", json.dumps({
            "method": self.name, "case": case.id, "prompt": case.train_prompt, "settings": self.settings,
            "timesteps": timesteps, "inversion_levels": len(levels), "inversion_s": round(time.perf_counter() - t0, 3),
            **self.sources_record()}, indent=1))

    @abstractmethod
    def read_reference(self, unet, latents: dict[int, torch.Tensor], text: torch.Tensor):
        """What the guidance compares with, read from the inverted reference {timestep: sample} (caption `text`)."""

    @abstractmethod
    def make_guidance(self, reference) -> Guidance:
        ...

    def start(self, reference, seed: int) -> torch.Tensor | None:
        """The keyframe sampler's starting sample; None: pure noise from the seed."""
        return None

    def generate(self, state, prompt: str, seed: int) -> Video:
        reference = state["reference"]
        return self._video(self.cascade.run(prompt, seed, init_latents=self.start(reference, seed),
                                            guidance=self.make_guidance(reference)))

    def protocol(self, state) -> dict:
        return dict(state["protocol"])
