"""`motion-inversion`: MotionInversion's recipe (Wang et al., "Motion Inversion for Video Customization", 2024) on
the project's backbones, following github.com/EnVision-Research/MotionInversion at commit
31ed7fb0f6f4a669832a550a2188305cade89416 (configs/config.yaml, models/unet/motion_embeddings.py, attn_ctrl.py,
loss/, inference.py).

It trains only motion embeddings (vmc/models/motion_embedding.py), all else frozen: a query-key embedding
(frames × channels) added where the temporal transformers' attentions read queries and keys, and a value
embedding per spatial position added where they read values, both zero at first. Loss: the plain ε-MSE
(`BaseLoss`, the official config's), or with the `loss` setting `appearance_debiased` MotionDirector's debiased
one (`DebiasedTemporalLoss`). Official: AdamW at lr 0.02, constant, without gradient clipping, 400 steps, on 24
frames at 576×320. The clip is DDIM-inverted (50 steps, empty prompt) with the untrained UNet, before the
embeddings exist, as the official code caches it; sampling starts from √p·inversion + √(1−p)·noise with
`noise_prior` p = 0.5 (official `BlendInit`), and the value embedding enters as its frame differences (the
official inference's debiasing for object and hybrid motion; its camera-motion option, which drops the value
embedding, is not offered). Official sampling is 30 steps at guidance 12; here the backbone's own sampler and
steps, as for every method. The shapes world runs 200 steps at lr 0.2 (its cascade.json, chosen on shapes-dev).

Where the embeddings go: the official code picks the temporal transformer blocks of the down and up path whose
width is 1280 (`combinations: [down, 1280], [up, 1280]`), which on ZeroScope are the deepest level that has
temporal transformers, down_blocks.2 and up_blocks.1, the mid block left out. The same rule by module name here:
the blocks under `down_blocks.<i>.temp_attentions` with the largest i that has them and under
`up_blocks.<j>.temp_attentions` with the smallest such j. On Show-1's base UNet those are down_blocks.3 (3 blocks)
and up_blocks.0 (4 blocks), 1280 channels at 5 × 8 positions for 40 × 64 keyframes; on the shapes world
down_blocks.2 (1) and up_blocks.0 (2), 64 channels at 4 × 4 positions. The embeddings span the backbone's frame
count (the official code allocates 32 and trains the first 24, which is the same).
"""

from __future__ import annotations

import re

from eval.search_space import Param
from eval.settings import Setting
from vmc.families.tuning import TuningMethod
from vmc.models.motion_embedding import MotionEmbedding, add_motion_embeddings

TEMPORAL_BLOCK = re.compile(r"(down|up)_blocks\.(\d+)\.temp_attentions\.\d+\.transformer_blocks\.\d+")


def deepest_temporal_blocks(unet) -> list[str]:
    """The temporal transformer blocks of the deepest down block and of the first up block that have any."""
    found = [(m[1], int(m[2]), name) for name, _ in unet.named_modules() if (m := TEMPORAL_BLOCK.fullmatch(name))]
    if not {"down", "up"} <= {path for path, _, _ in found}:
        raise ValueError(f"{type(unet).__name__} has no temporal transformers in down_blocks and up_blocks")
    down = max(level for path, level, _ in found if path == "down")
    up = min(level for path, level, _ in found if path == "up")
    return [name for path, level, name in found if (path, level) in (("down", down), ("up", up))]


class MotionInversionMethod(TuningMethod):
    name = "motion-inversion"
    unsupported_kinds = {"dit": "its motion embeddings enter the temporal transformers' positions, which a video "
                                "diffusion transformer does not have (DeT's port to Q/K/V embeddings is not implemented)"}
    settings_key = "motion-inversion"
    defaults = {"loss": "eps_mse", "rule": "motion-embeddings", "lr": 0.02, "steps": 400, "max_grad_norm": None}
    default_inversion_steps = 50
    own_settings = {"noise_prior": 0.5}
    own_declared = {"noise_prior": Setting(float, low=0, high=1, search=Param(0.5, 0.0, 1.0))}
    start = "prior"
    inversion_unet = "base"

    def prepare_unet(self, unet, settings):
        height, width = self.cascade.sample_size  # the UNet's own sample size (latents on a latent backbone)
        add_motion_embeddings(unet, deepest_temporal_blocks(unet), self.backbone.settings.num_frames, height, width,
                              self.cascade.text_embeddings([""])[0])

    def inference_unet(self, unet, settings):
        for module in unet.modules():
            if isinstance(module, MotionEmbedding):
                module.frame_differences = True

    def trainable(self, unet, config) -> dict:
        return {name: p for name, p in unet.named_parameters() if ".motion_embedding." in name}
