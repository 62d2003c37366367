"""VMC's recipes in the per-clip tuning family (vmc/families/tuning.py), named `vmc[:BACKBONE]` in eval.run.

vmc: adapt the keyframe UNet's temporal attention (the q/k/v projections of both temporal self-attentions) to
the reference clip with the motion distillation loss, DDIM-invert the clip with the adapted UNet (empty
prompt), then run the cascade from that noise with the target prompt. vmc-eps: the same with the plain ε-MSE
loss (the paper's ablation).
"""

from __future__ import annotations

from vmc.families.tuning import TuningMethod


class VMCMethod(TuningMethod):
    name = "vmc"
    settings_key = "vmc"
    defaults = {"loss": "cosine"}  # the rest are TrainConfig's defaults, the official ones


class VMCEpsMethod(VMCMethod):
    name = "vmc-eps"
    defaults = {"loss": "eps_mse"}
