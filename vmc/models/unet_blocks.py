"""The 3D UNet blocks of Show-1, on today's diffusers building blocks.

Every layer runs: 2D resnet → temporal conv (`temp_convs`) → [spatial attention with added text K/V
(`attentions`, DeepFloyd-IF style) → temporal transformer (`temp_attentions`)]. Module names and shapes are
those of the official checkpoints. Two quirks of the official code are kept because the weights depend on
them: the temporal transformer is built with heads and head size swapped (64 heads of C/64 channels), and
the up blocks take `attention_head_dim` in down-block order. The ModelScope block types come from diffusers;
their temporal convs normalise with `norm_num_groups` groups where the official code always used 32, which
is the same for every published config (all use 32).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnAddedKVProcessor2_0
from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from diffusers.models.unets.unet_3d_blocks import (
    CrossAttnDownBlock3D,
    CrossAttnUpBlock3D,
    DownBlock3D,
    UpBlock3D,
)
from torch import nn


class _Show1Block(nn.Module):
    """Shared construction and layer loop of the IF-style (Resnet* / SimpleCrossAttn*) 3D blocks."""

    def __init__(self, channels: int, temb_channels: int, eps: float, act: str, groups: int, time_scale_shift: str,
                 out_scale: float, skip_time_act: bool, with_attention: bool, attention_head_dim: int = 64,
                 cross_attention_dim: int | None = None, only_cross_attention: bool = False,
                 cross_attention_norm: str | None = None):
        super().__init__()
        self._resnet_kw = dict(temb_channels=temb_channels, eps=eps, groups=groups, dropout=0.0,
                               time_embedding_norm=time_scale_shift, non_linearity=act,
                               output_scale_factor=out_scale, pre_norm=True, skip_time_act=skip_time_act)
        self._attn_kw = dict(heads=channels // attention_head_dim, dim_head=attention_head_dim,
                             cross_attention_dim=cross_attention_dim, groups=groups,
                             only_cross_attention=only_cross_attention, cross_attention_norm=cross_attention_norm)
        self.with_attention = with_attention
        self.has_cross_attention = with_attention
        self.gradient_checkpointing = False
        self.checkpoint_attention = True  # False: checkpoint the convolutional parts only (checkpointing.py)

    def _resnet(self, cin: int, cout: int, **kw) -> ResnetBlock2D:
        return ResnetBlock2D(in_channels=cin, out_channels=cout, **self._resnet_kw, **kw)

    def _make_layers(self, in_channels: list[int], channels: int):
        self.resnets = nn.ModuleList(self._resnet(c, channels) for c in in_channels)
        self.temp_convs = nn.ModuleList(TemporalConvLayer(channels, channels, dropout=0.1) for _ in in_channels)
        if self.with_attention:
            n = len(in_channels) - (1 if isinstance(self, UNetMidBlock3DSimpleCrossAttn) else 0)
            a = self._attn_kw
            self.attentions = nn.ModuleList(
                Attention(query_dim=channels, cross_attention_dim=channels, heads=a["heads"], dim_head=a["dim_head"],
                          added_kv_proj_dim=a["cross_attention_dim"], norm_num_groups=a["groups"], bias=True,
                          upcast_softmax=True, only_cross_attention=a["only_cross_attention"],
                          cross_attention_norm=a["cross_attention_norm"], processor=AttnAddedKVProcessor2_0())
                for _ in range(n))
            # official argument order: TransformerTemporalModel(head_dim, channels // head_dim, …)
            self.temp_attentions = nn.ModuleList(
                TransformerTemporalModel(a["dim_head"], channels // a["dim_head"], in_channels=channels, num_layers=1,
                                         cross_attention_dim=a["cross_attention_dim"], norm_num_groups=a["groups"])
                for _ in range(n))

    def _run(self, fn, *args, attention: bool = False):
        if self.gradient_checkpointing and torch.is_grad_enabled() and (self.checkpoint_attention or not attention):
            return self._gradient_checkpointing_func(fn, *args)  # as diffusers' enable_gradient_checkpointing set it
        return fn(*args)

    def _conv_part(self, i, h, temb, num_frames):
        h = self.resnets[i](h, temb)
        return self.temp_convs[i](h, num_frames=num_frames)

    def _attn_part(self, i, h, encoder_hidden_states, num_frames, cross_attention_kwargs):
        h = self.attentions[i](h, encoder_hidden_states=encoder_hidden_states, **cross_attention_kwargs)
        return self.temp_attentions[i](h, num_frames=num_frames, cross_attention_kwargs=cross_attention_kwargs).sample

    def _layer(self, i, h, temb, encoder_hidden_states, num_frames, cross_attention_kwargs):
        h = self._run(self._conv_part, i, h, temb, num_frames)
        if self.with_attention:
            h = self._run(self._attn_part, i, h, encoder_hidden_states, num_frames, cross_attention_kwargs or {},
                          attention=True)
        return h


class Show1DownBlock3D(_Show1Block):
    """ResnetDownsampleBlock3D (no attention) and SimpleCrossAttnDownBlock3D; downsampling by a resnet."""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, add_downsample: bool, **kw):
        super().__init__(out_channels, **kw)
        self._make_layers([in_channels] + [out_channels] * (num_layers - 1), out_channels)
        self.downsamplers = nn.ModuleList([self._resnet(out_channels, out_channels, down=True)]) \
            if add_downsample else None

    def forward(self, hidden_states, temb=None, encoder_hidden_states=None, num_frames=1, cross_attention_kwargs=None,
                **_):
        outputs = ()
        for i in range(len(self.resnets)):
            hidden_states = self._layer(i, hidden_states, temb, encoder_hidden_states, num_frames,
                                        cross_attention_kwargs)
            outputs += (hidden_states,)
        if self.downsamplers is not None:
            hidden_states = self._run(self.downsamplers[0], hidden_states, temb)
            outputs += (hidden_states,)
        return hidden_states, outputs


class Show1UpBlock3D(_Show1Block):
    """ResnetUpsampleBlock3D (no attention) and SimpleCrossAttnUpBlock3D; upsampling by a resnet."""

    def __init__(self, in_channels: int, prev_output_channel: int, out_channels: int, num_layers: int,
                 add_upsample: bool, **kw):
        super().__init__(out_channels, **kw)
        ins = [(prev_output_channel if i == 0 else out_channels) + (in_channels if i == num_layers - 1
               else out_channels) for i in range(num_layers)]
        self._make_layers(ins, out_channels)
        self.upsamplers = nn.ModuleList([self._resnet(out_channels, out_channels, up=True)]) if add_upsample else None

    def forward(self, hidden_states, res_hidden_states_tuple, temb=None, encoder_hidden_states=None, num_frames=1,
                cross_attention_kwargs=None, **_):
        for i in range(len(self.resnets)):
            hidden_states = torch.cat([hidden_states, res_hidden_states_tuple[-1 - i]], dim=1)
            hidden_states = self._layer(i, hidden_states, temb, encoder_hidden_states, num_frames,
                                        cross_attention_kwargs)
        if self.upsamplers is not None:
            hidden_states = self._run(self.upsamplers[0], hidden_states, temb)
        return hidden_states


class UNetMidBlock3DSimpleCrossAttn(_Show1Block):
    """resnet → temporal conv, then `num_layers` × (attention → temporal transformer → resnet → temporal conv)."""

    def __init__(self, in_channels: int, num_layers: int = 1, **kw):
        super().__init__(in_channels, with_attention=True, **kw)
        self._make_layers([in_channels] * (num_layers + 1), in_channels)

    def forward(self, hidden_states, temb=None, encoder_hidden_states=None, num_frames=1, cross_attention_kwargs=None,
                **_):
        hidden_states = self._run(self._conv_part, 0, hidden_states, temb, num_frames)
        for i in range(len(self.attentions)):
            hidden_states = self._run(self._attn_part, i, hidden_states, encoder_hidden_states, num_frames,
                                      cross_attention_kwargs or {}, attention=True)
            hidden_states = self._run(self._conv_part, i + 1, hidden_states, temb, num_frames)
        return hidden_states


SHOW1_DOWN = {"ResnetDownsampleBlock3D": False, "SimpleCrossAttnDownBlock3D": True}
SHOW1_UP = {"ResnetUpsampleBlock3D": False, "SimpleCrossAttnUpBlock3D": True}
MODELSCOPE_DOWN = {"DownBlock3D": DownBlock3D, "CrossAttnDownBlock3D": CrossAttnDownBlock3D}
MODELSCOPE_UP = {"UpBlock3D": UpBlock3D, "CrossAttnUpBlock3D": CrossAttnUpBlock3D}
BLOCK_TYPES = [*SHOW1_DOWN, *SHOW1_UP, *MODELSCOPE_DOWN, *MODELSCOPE_UP, "UNetMidBlock3DSimpleCrossAttn",
               "UNetMidBlock3DCrossAttn"]


def modelscope_heads(channels: int, heads: int) -> int:
    """The argument diffusers' ModelScope blocks need to reproduce Show-1's split of `channels` into `heads`
    heads of channels/heads each (diffusers reads its argument as the head size)."""
    return channels // heads


def get_down_block(kind: str, *, in_channels, out_channels, num_layers, add_downsample, temb_channels, eps, act,
                   groups, time_scale_shift, out_scale, skip_time_act, cross_attention_dim, attention_head_dim,
                   num_attention_heads, only_cross_attention, cross_attention_norm, downsample_padding):
    if kind in SHOW1_DOWN:
        return Show1DownBlock3D(in_channels, out_channels, num_layers, add_downsample, temb_channels=temb_channels,
                                eps=eps, act=act, groups=groups, time_scale_shift=time_scale_shift,
                                out_scale=out_scale, skip_time_act=skip_time_act, with_attention=SHOW1_DOWN[kind],
                                attention_head_dim=attention_head_dim, cross_attention_dim=cross_attention_dim,
                                only_cross_attention=only_cross_attention, cross_attention_norm=cross_attention_norm)
    common = dict(num_layers=num_layers, in_channels=in_channels, out_channels=out_channels,
                  temb_channels=temb_channels, add_downsample=add_downsample, resnet_eps=eps, resnet_act_fn=act,
                  resnet_groups=groups, downsample_padding=downsample_padding, resnet_time_scale_shift=time_scale_shift)
    if kind == "DownBlock3D":
        return DownBlock3D(**common)
    if kind == "CrossAttnDownBlock3D":
        return CrossAttnDownBlock3D(**common, cross_attention_dim=cross_attention_dim,
                                    num_attention_heads=modelscope_heads(out_channels, num_attention_heads),
                                    only_cross_attention=only_cross_attention)
    raise ValueError(f"unknown down block type '{kind}' (known: {', '.join(BLOCK_TYPES)})")


def get_up_block(kind: str, *, in_channels, prev_output_channel, out_channels, num_layers, add_upsample,
                 temb_channels, eps, act, groups, time_scale_shift, out_scale, skip_time_act, cross_attention_dim,
                 attention_head_dim, num_attention_heads, only_cross_attention, cross_attention_norm):
    if kind in SHOW1_UP:
        return Show1UpBlock3D(in_channels, prev_output_channel, out_channels, num_layers, add_upsample,
                              temb_channels=temb_channels, eps=eps, act=act, groups=groups,
                              time_scale_shift=time_scale_shift, out_scale=out_scale, skip_time_act=skip_time_act,
                              with_attention=SHOW1_UP[kind], attention_head_dim=attention_head_dim,
                              cross_attention_dim=cross_attention_dim, only_cross_attention=only_cross_attention,
                              cross_attention_norm=cross_attention_norm)
    common = dict(num_layers=num_layers, in_channels=in_channels, out_channels=out_channels,
                  prev_output_channel=prev_output_channel, temb_channels=temb_channels, add_upsample=add_upsample,
                  resnet_eps=eps, resnet_act_fn=act, resnet_groups=groups, resnet_time_scale_shift=time_scale_shift)
    if kind == "UpBlock3D":
        return UpBlock3D(**common)
    if kind == "CrossAttnUpBlock3D":
        return CrossAttnUpBlock3D(**common, cross_attention_dim=cross_attention_dim,
                                  num_attention_heads=modelscope_heads(out_channels, num_attention_heads),
                                  only_cross_attention=only_cross_attention)
    raise ValueError(f"unknown up block type '{kind}' (known: {', '.join(BLOCK_TYPES)})")
