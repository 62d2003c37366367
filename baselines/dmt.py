"""`dmt`: Diffusion Motion Transfer ("Space-Time Diffusion Features for Zero-Shot Text-Driven Motion Transfer",
Yatim et al., CVPR 2024), training-free, on our cascade's keyframe stage.

Followed: github.com/diffusion-motion-transfer/diffusion-motion-transfer at
da9d4c3c28af43e65c6e7c1278b440566a037cca (2025-07-07; the code is that of the initial commit ab55bcd, 2023-12-13:
ZeroScope v2 576w, configs/guidance_config.yaml and preprocess_config.yaml). The reference is DDIM-inverted with
its caption, keeping the latent at every timestep; at each guided sampling step the reference's features are
read from its latent at that timestep (caption, no CFG) and the generated ones from the noisy sample (target
prompt, no CFG). Each feature is reduced to its spatial marginal mean (SMM: the mean over pixels, per frame and
channel); the loss, per feature and summed over the features, is the mean over anchor frames i of
1 − mean_j cos(SMM_gen[j] − SMM_gen[i], SMM_ref[j] − SMM_ref[i]) (the anchor's own zero difference counts as
cosine 0). The first 40% of the steps (20 of 50) are guided: the noisy sample is optimised with Adam for 10
iterations at a learning rate decaying linearly from 0.007 to 0.004 over the guided steps, then denoised as
usual. Sampling starts from the inverted latent's low frequencies (bilinear down- and upsampling by 4 per frame)
with the high frequencies of fresh noise from the seed.

Layers: the official `up_res_dict {1: [1]}` reads decoder block 1, its second layer: the upsampler's output, the
resnet's residual branch before the residual sum (guidance_before_res) and the temporal convolution's output.
(Its config also enables attention features, but the code wraps attentions only for decoder block 0, which in
ZeroScope has none.) ZeroScope's up_blocks.1 runs at 1/4 of the latent size, each layer resnet → temporal conv
→ attention → temporal attention, as Show-1's layers do, so the features map by name: up_blocks.1.resnets.1.conv2
(the last operation of the residual branch), up_blocks.1.temp_convs.1, up_blocks.1.upsamplers.0. That is 1/4 of
40×64 in Show-1; in the 3-level shapes UNet, up_blocks.1 is the decoder's second level as well (at 1/2).

Not reproduced: restart sampling (the official config re-noises each denoised sample back to its step's level
and denoises it again; it would double every step and break the multistep solver's history); our sampler is the
backbone's (DPM-Solver++ at its own step count, not DDIM at 50); fp16 autocast with a gradient scaler is plain
precision here. CFG is the backbone's keyframe guidance for a start from inverted noise, as for vmc (the
official 10 is about ZeroScope's usual 9).

The shapes backbone keeps the official settings (cascade.json has no `dmt` entry): on shapes-dev (seed 0, 18
videos) they lifted oracle_motion on the held-out motions from t2v's 0.26 to 0.41 at oracle_appearance 0.80 (t2v
0.88); three times the learning rate (the official 200 Adam iterations over 50 steps are 70 over 16 here) reached
0.48 at appearance 0.75, not a clear gain.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from eval.search_space import Param
from eval.settings import Setting
from vmc.families.guidance import Guidance, GuidanceMethod
from vmc.models.features import UNetFeatures


def spatial_marginal_mean(feature, frames: int | None = None) -> torch.Tensor:
    """(F, C, H, W) features of a one-video batch → (F, C), the mean over pixels, in fp32. A video diffusion
    transformer block's output, (1, F·h·w, C) video tokens in (f, h, w) order (CogVideoX's comes with its text
    tokens: (video, text)), gives the mean over each of its `frames` latent frames' tokens, as DiTFlow ports SMM."""
    if isinstance(feature, tuple):
        feature = feature[0]
    if feature.ndim == 3:
        return feature.float().reshape(frames, -1, feature.shape[-1]).mean(1)
    return feature.float().mean((-2, -1))


def smm_difference_loss(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """DMT's loss on (F, C) SMM features: mean over anchors i and frames j of 1 − cos between the generated and
    the reference difference of frame j from frame i."""
    gen = generated[None] - generated[:, None]  # [i, j] = generated[j] − generated[i]
    ref = reference[None] - reference[:, None]
    return (1 - F.cosine_similarity(gen, ref, dim=-1)).mean()


def low_pass(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, F, H, W) → its low frequencies: each frame down- and upsampled bilinearly by `factor`."""
    b, c, f, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    kw = dict(mode="bilinear", align_corners=True, antialias=True)
    low = F.interpolate(F.interpolate(frames, size=(h // factor, w // factor), **kw), size=(h, w), **kw)
    return low.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


class DMTGuidance(Guidance):
    def __init__(self, reference: list[dict], features, timesteps, learning_rates, iterations: int):
        super().__init__(range(len(reference)), timesteps)
        self.reference, self.learning_rates, self.iterations = reference, learning_rates, iterations
        self.outputs = tuple(features)

    def guide(self, x, t, step, read):
        self.check_level(t, step)
        x = x.float().clone().requires_grad_(True)  # Adam on fp32 (the official code's sample is fp32 too)
        reference = {name: smm.to(x.device) for name, smm in self.reference[step].items()}
        optimizer = torch.optim.Adam([x], lr=self.learning_rates[step])
        for _ in range(self.iterations):
            features = read(x)
            loss = sum(smm_difference_loss(spatial_marginal_mean(features[name], x.shape[2]), smm)
                       for name, smm in reference.items())
            (x.grad,) = torch.autograd.grad(loss, x)  # the sample's gradient only, none for the UNet
            optimizer.step()
        return x.detach()


class DMTMethod(GuidanceMethod):
    name = "dmt"
    defaults = {"features": ["up_blocks.1.resnets.1.conv2", "up_blocks.1.temp_convs.1", "up_blocks.1.upsamplers.0"],
                "guided_share": 0.4, "iterations": 10, "lr": [0.007, 0.004], "downsample_factor": 4,
                "inversion_steps": None}
    declared_settings = {"features": Setting(list, item=Setting(str)),
                         "guided_share": Setting(float, low=0, high=1, search=Param(0.4, 0.1, 0.8)),
                         "iterations": Setting(int, low=1, search=Param(10, 3, 20, integer=True)),
                         "lr": Setting(list, length=2, item=Setting(float, positive=True)),
                         "downsample_factor": Setting(int, low=1),
                         "inversion_steps": Setting(int, low=1, optional=True)}

    def read_reference(self, unet, latents, text):
        """Per guided step, the SMM of each feature; and the inverted latent at the first step (the start)."""
        features = UNetFeatures(unet, outputs=tuple(self.settings["features"]))
        timesteps = self.timesteps()
        steps = [{name: spatial_marginal_mean(v, latents[t].shape[2]).cpu()
                  for name, v in features(latents[t], t, text).items()}
                 for t in timesteps[:self.num_guided]]
        return {"steps": steps, "start": latents[timesteps[0]]}

    def make_guidance(self, reference) -> DMTGuidance:
        first, last = self.settings["lr"]
        rates = np.linspace(first, last, len(reference["steps"])).tolist()
        return DMTGuidance(reference["steps"], self.settings["features"], self.timesteps(), rates,
                           self.settings["iterations"])

    def start(self, reference, seed: int) -> torch.Tensor:
        inverted = reference["start"]
        g = torch.Generator("cpu").manual_seed(seed)
        noise = torch.randn(inverted.shape, generator=g).to(inverted.device, inverted.dtype)
        factor = self.settings["downsample_factor"]
        return low_pass(inverted, factor) + noise - low_pass(noise, factor)
