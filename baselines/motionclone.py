"""`motionclone`: MotionClone (Ling, Bu et al., ICLR 2025), training-free motion cloning by temporal-attention
guidance, on our cascade's keyframe stage.

Followed: github.com/Bujiazi/MotionClone at 33132fb051cbb3833ff6a72eba817ea7746fa816 (2024-08-07, the newest
commit of the published repository: AnimateDiff v3 on SD-1.5, configs/inference_config/fox.yaml). That release
DDIM-inverts the reference with its caption through every timestep and, at each guided sampling step, reads the
reference's temporal self-attention probabilities from its inverted latent at that timestep (no CFG). We do the
same through the sampler's own levels (`inversion_steps: 1000` inverts through all of them, as invert.py does).

Primary temporal-attention guidance: for each row of a reference attention (one pixel, head and query frame over
the key frames) only its top-1 entry counts; the energy is the squared difference between the generated
probability at that key frame and the reference's value, averaged per module, weighted per decoder block
(up_blocks.1: 2e4, up_blocks.2: 1e4) and averaged over the modules; the generated probabilities come from the
UNet's conditional branch on the noisy sample. Its gradient steers the first 60% of the steps (300 of 500),
ramped in linearly over a warm-up of the first 2% (10 of 500), with scale 1.
The release also has a location-aware appearance term (weights [500, 0], from a parallel unguided sampling
branch and masks from CLIP-token cross-attention); it is not implemented here, so this is the motion guidance alone.

Where the gradient enters: the official DDIM step subtracts scale·√(1−ᾱ_t)·∇E from the predicted noise while
keeping the predicted x₀, which moves x_{t−1} by −√(1−ᾱ_{t−1})·scale·√(1−ᾱ_t)·∇E. Our sampler is the backbone's
(DPM-Solver++ for Show-1 and the shapes world, stepping each frame), so the correction is made on the sample
before the step instead: x_t ← x_t − scale·(1−ᾱ_t)·∇E, i.e. its noise becomes ε − scale·√(1−ᾱ_t)·∇E with x₀
unchanged; the sampler then evaluates the UNet on the corrected sample and steps it as usual. For DDIM and a
denoiser that reads noise and x₀ exactly, that is the official update; it needs nothing of the scheduler but ᾱ.

Layers: AnimateDiff's motion modules hold two temporal self-attentions each (attention_blocks.0 and .1); the
temporal transformers of our keyframe UNet hold two as well (transformer_blocks.0.attn1 and attn2, both over the
frames). The official blocks map by name: up_blocks.1 (AnimateDiff: 3 modules × 2 attentions at 1/4 of the latent
size) → up_blocks.1.temp_attentions.*.transformer_blocks.0.attn{1,2} (Show-1: 4 layers × 2 at 1/4 of 40×64);
up_blocks.2 (at 1/2) → up_blocks.2.temp_attentions.* (Show-1: at 1/2). The 3-level shapes UNet has temporal
attention in up_blocks.0 and up_blocks.1 only, so there the guidance reads up_blocks.1 (at 1/2, weight 2e4); a
block without temporal attention is skipped. CFG is the backbone's keyframe guidance, as for every method (the
official 7.5 is SD-1.5's).

The shapes backbone keeps the official settings (cascade.json has no `motionclone` entry): on shapes-dev (seed 0,
18 videos) they lifted oracle_motion on the held-out motions from t2v's 0.26 to 0.79 at oracle_appearance 0.86
(t2v 0.88), while scale 10 reached 0.57 at appearance 0.63.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention

from eval.errors import UserError
from eval.search_space import Param
from eval.settings import Setting
from vmc.families.guidance import Guidance, GuidanceMethod, guided_steps
from vmc.models.features import UNetFeatures


def motion_energy(probs: dict, reference: dict, weights: dict) -> torch.Tensor:
    """MotionClone's energy: per module, the mean over reference rows of (generated probability at the row's
    top-1 key − its top-1 value)², times the module's weight; averaged over the modules. probs: {module:
    (N, heads, F, F)}; reference: {module: (values, indices)}, each (N, heads, F); weights: {module: weight}."""
    terms = []
    for name, weight in weights.items():
        value, index = reference[name]
        generated = probs[name].float().gather(-1, index.long().unsqueeze(-1)).squeeze(-1)
        terms.append(weight * (generated - value).square().mean())
    return torch.stack(terms).mean()


class MotionCloneGuidance(Guidance):
    def __init__(self, reference: list[dict], weights: dict, timesteps, alphas_cumprod: torch.Tensor,
                 scale: float, warm_up: int):
        super().__init__(range(len(reference)), timesteps)
        self.reference, self.weights = reference, weights
        self.attention_probs = tuple(weights)
        self.alphas_cumprod, self.scale, self.warm_up = alphas_cumprod, scale, warm_up

    def guide(self, x, t, step, read):
        self.check_level(t, step)
        x = x.float().requires_grad_(True)
        reference = {name: (v.to(x.device), i.to(x.device)) for name, (v, i) in self.reference[step].items()}
        energy = motion_energy(read(x), reference, self.weights)
        if step < self.warm_up:
            energy = energy * (step + 1) / self.warm_up
        (gradient,) = torch.autograd.grad(energy, x)
        return x - self.scale * (1 - self.alphas_cumprod[int(t)].item()) * gradient


class MotionCloneMethod(GuidanceMethod):
    unsupported_kinds = {"dit": "it guides with temporal self-attention probabilities (frames × frames per location), "
                                "and a video diffusion transformer's attention runs over all space-time tokens: no port"}
    name = "motionclone"
    defaults = {"blocks": {"up_blocks.1": 2e4, "up_blocks.2": 1e4}, "scale": 1.0, "guided_share": 0.6,
                "warm_up_share": 0.02, "inversion_steps": None}
    declared_settings = {"blocks": Setting(dict), "scale": Setting(float, positive=True, search=Param.around(1.0, 10)),
                         "guided_share": Setting(float, low=0, high=1, search=Param(0.6, 0.2, 1.0)),
                         "warm_up_share": Setting(float, low=0, high=1),
                         "inversion_steps": Setting(int, low=1, optional=True)}

    def module_weights(self, unet) -> dict:
        """{attention module: its block's weight} for the temporal attentions of the configured decoder blocks."""
        blocks = self.settings["blocks"]
        weights = {name: weight for block, weight in blocks.items() for name, m in unet.named_modules()
                   if name.startswith(f"{block}.temp_attentions.") and isinstance(m, Attention)}
        if not weights:
            raise UserError(f"motionclone: no temporal attention in {', '.join(blocks)} of backbone "
                            f"{self.backbone.name}'s keyframe UNet")
        return weights

    def read_reference(self, unet, latents, text):
        """Per guided step, each module's top-1 (value, key index) per attention row (indices as uint8: a
        keyframe clip has far fewer than 256 frames, and Show-1's rows number 3.3 M per step)."""
        weights = self.module_weights(unet)
        features = UNetFeatures(unet, attention_probs=tuple(weights))
        steps = []
        for t in self.timesteps()[:self.num_guided]:
            top = {name: p.max(-1) for name, p in features(latents[t], t, text).items()}
            steps.append({name: (v.cpu(), i.to(torch.uint8).cpu()) for name, (v, i) in top.items()})
        return {"steps": steps, "weights": weights}

    def make_guidance(self, reference) -> MotionCloneGuidance:
        settings = self.settings
        warm_up = guided_steps(self.backbone.settings.keyframe_steps, settings["warm_up_share"])
        alphas = self.cascade.load_scheduler(self.backbone.base).alphas_cumprod
        return MotionCloneGuidance(reference["steps"], reference["weights"], self.timesteps(), alphas,
                                   settings["scale"], warm_up)
