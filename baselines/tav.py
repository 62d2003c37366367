"""`tav`: Tune-A-Video's recipe (Wu et al., ICCV 2023) on the project's backbones.

Tune-A-Video inflates an image model: its spatial self-attention becomes sparse-causal (frame i attends to
frames 0 and i−1 instead of itself) and a temporal attention is added; it trains the query projections of
the spatial attention and the whole temporal attention with the plain ε-MSE loss on the one clip, and
generates from the clip's DDIM inversion. Official: lr 3e-5, 500 steps, inversion and sampling 50 steps.

On the Show-1 family (show1, shapes, tiny) the keyframe UNet already has temporal attention
(`temp_attentions`): that is the one trained. Its spatial attention is DeepFloyd-IF style, one attention
whose keys/values are the text tokens (`add_k_proj`/`add_v_proj`) followed by the frame's own pixels
(`to_k`/`to_v`); its single `to_q` serves both the self and the cross part, so "the query projections of
the spatial self- and cross-attention" are the `attentions.*.to_q` layers. Sparse-causal attention replaces
the pixel keys/values of frame i by those of frames 0 and i−1 (frame 0 by frame 0 twice, as the official
code does); the text keys/values are unchanged. Generation then runs the backbone's cascade like every
other method (same sampler and steps), starting the keyframes from the inversion.
"""

from __future__ import annotations

from vmc.families.tuning import TuningMethod
from vmc.models.sparse_causal import enable_sparse_causal


class TAVMethod(TuningMethod):
    name = "tav"
    unsupported_kinds = {"dit": "Tune-A-Video's sparse-causal attention inflates a per-frame spatial attention, and a "
                                "video diffusion transformer attends over all frames' tokens at once: no port"}
    settings_key = "tav"
    defaults = {"loss": "eps_mse", "rule": "tav", "lr": 3e-5, "steps": 500}
    default_inversion_steps = 50

    def prepare_unet(self, unet, settings):
        enable_sparse_causal(unet)

    def extra_meta(self, settings) -> dict:
        return {"attention": "sparse-causal"}
