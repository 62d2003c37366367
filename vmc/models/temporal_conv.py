"""The temporal conv layers of Show-1 (`temp_convs`), run as 2D convolutions over (frames, pixels).

A Conv3d with a (3, 1, 1) kernel is a Conv2d with a (3, 1) kernel on the video viewed as (B, C, F, H·W).
PyTorch runs the 2D form on its fast kernels where the 3D one falls back to a slow path on the CPU for a
batch of one (about 2× slower at the shapes world's sizes). The parameters stay those of the Conv3d modules, so
the state-dict keys and shapes are unchanged, and so are the outputs up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.resnet import TemporalConvLayer
from torch import nn


class FrameConvLayer(TemporalConvLayer):
    def forward(self, hidden_states: torch.Tensor, num_frames: int = 1) -> torch.Tensor:
        bf, c, h, w = hidden_states.shape
        x = hidden_states.reshape(bf // num_frames, num_frames, c, h * w).transpose(1, 2)  # (B, C, F, H·W)
        identity = x
        for layers in (self.conv1, self.conv2, self.conv3, self.conv4):
            *pre, conv = layers
            for layer in pre:  # group norm, SiLU, dropout: the same on the flattened pixels
                x = layer(x)
            x = F.conv2d(x, conv.weight[..., 0], conv.bias, padding=(conv.padding[0], 0))
        x = identity + x
        return x.transpose(1, 2).reshape(bf, -1, h, w)


def use_frame_convs(model: nn.Module) -> nn.Module:
    """Make every TemporalConvLayer in `model` a FrameConvLayer. It adds no state (only `forward` differs), so
    each layer is re-classed in place: no second set of weights is built (298 M parameters for Show-1 base)."""
    for layer in model.modules():
        if type(layer) is TemporalConvLayer:
            layer.__class__ = FrameConvLayer
    return model
