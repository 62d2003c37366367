"""Show1UNet3D: the Show-1 3D UNet as one config-driven diffusers model.

It takes the official `config.json` unchanged (also with `_class_name: UNet3DConditionModel`) and its
state-dict keys and shapes are those of the official checkpoints, so `from_pretrained(repo_or_dir,
subfolder="unet")` loads showlab/show-1-{base,interpolation,sr1} as published. Layout (B, C, F, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.activations import get_activation
from diffusers.models.embeddings import TextTimeEmbedding, TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from diffusers.models.unets.unet_3d_blocks import UNetMidBlock3DCrossAttn
from diffusers.utils import BaseOutput
from torch import nn

from vmc.models.temporal_conv import use_frame_convs
from vmc.models.unet_blocks import UNetMidBlock3DSimpleCrossAttn, get_down_block, get_up_block, modelscope_heads


@dataclass
class Show1UNetOutput(BaseOutput):
    sample: torch.Tensor  # (B, out_channels, F, H, W)


def _per_block(value, n: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"`{name}` has {len(value)} entries for {n} down blocks")
        return list(value)
    return [value] * n


class Show1UNet3D(ModelMixin, ConfigMixin):
    _supports_gradient_checkpointing = True
    config_name = "config.json"
    _skip_layerwise_casting_patterns = ["norm"]

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 3,
        out_channels: int = 6,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = ("ResnetDownsampleBlock3D", "SimpleCrossAttnDownBlock3D",
                                             "SimpleCrossAttnDownBlock3D", "SimpleCrossAttnDownBlock3D"),
        mid_block_type: str | None = "UNetMidBlock3DSimpleCrossAttn",
        up_block_types: tuple[str, ...] = ("SimpleCrossAttnUpBlock3D", "SimpleCrossAttnUpBlock3D",
                                           "SimpleCrossAttnUpBlock3D", "ResnetUpsampleBlock3D"),
        only_cross_attention: bool | tuple[bool, ...] = False,
        block_out_channels: tuple[int, ...] = (320, 640, 960, 1280),
        layers_per_block: int | tuple[int, ...] = 3,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1.0,
        act_fn: str = "gelu",
        norm_num_groups: int | None = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 1280,
        transformer_layers_per_block: int = 1,
        encoder_hid_dim: int | None = 4096,
        encoder_hid_dim_type: str | None = "text_proj",
        attention_head_dim: int | tuple[int, ...] = 64,
        num_attention_heads: int | None = None,
        dual_cross_attention: bool = False,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = "text",
        addition_time_embed_dim: int | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "scale_shift",
        resnet_skip_time_act: bool = False,
        resnet_out_scale_factor: float = 1.0,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        time_embedding_act_fn: str | None = None,
        timestep_post_act: str | None = None,
        time_cond_proj_dim: int | None = None,
        conv_in_kernel: int = 3,
        conv_out_kernel: int = 3,
        projection_class_embeddings_input_dim: int | None = None,
        class_embeddings_concat: bool = False,
        mid_block_only_cross_attention: bool | None = None,
        cross_attention_norm: str | None = "group_norm",
        addition_embed_type_num_heads: int = 64,
        transfromer_in_opt: bool = False,  # sic: the official key
    ):
        super().__init__()
        unsupported = {
            "num_attention_heads": (num_attention_heads, None), "time_embedding_type": (time_embedding_type,
            "positional"), "dual_cross_attention": (dual_cross_attention, False), "time_cond_proj_dim":
            (time_cond_proj_dim, None), "class_embeddings_concat": (class_embeddings_concat, False),
            "transformer_layers_per_block": (transformer_layers_per_block, 1),
            "use_linear_projection": (use_linear_projection, False), "upcast_attention": (upcast_attention, False)}
        for key, (value, expected) in unsupported.items():
            if value != expected:
                raise ValueError(f"Show1UNet3D: `{key}={value!r}` is not supported (Show-1 uses {expected!r})")
        if addition_embed_type not in (None, "text"):
            raise ValueError(f"Show1UNet3D: addition_embed_type {addition_embed_type!r} is not supported")
        if encoder_hid_dim_type not in (None, "text_proj") or (encoder_hid_dim_type and encoder_hid_dim is None):
            raise ValueError("Show1UNet3D: encoder_hid_dim_type must be None or 'text_proj' with encoder_hid_dim set")
        if class_embed_type not in (None, "timestep"):
            raise ValueError(f"Show1UNet3D: class_embed_type {class_embed_type!r} is not supported")
        if len(down_block_types) != len(up_block_types) or len(block_out_channels) != len(down_block_types):
            raise ValueError("Show1UNet3D: down_block_types, up_block_types and block_out_channels must have "
                             "the same length")
        n = len(down_block_types)
        layers = _per_block(layers_per_block, n, "layers_per_block")
        head_dims = _per_block(attention_head_dim, n, "attention_head_dim")
        only_cross = _per_block(only_cross_attention, n, "only_cross_attention")
        mid_only_cross = only_cross_attention if isinstance(only_cross_attention, bool) and \
            mid_block_only_cross_attention is None else bool(mid_block_only_cross_attention)

        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], conv_in_kernel, padding=(conv_in_kernel - 1) // 2)
        if transfromer_in_opt:
            self.transformer_in = TransformerTemporalModel(num_attention_heads=8, attention_head_dim=64,
                                                           in_channels=block_out_channels[0], num_layers=1)
        time_embed_dim = time_embedding_dim or block_out_channels[0] * 4
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim, act_fn=act_fn,
                                                post_act_fn=timestep_post_act)
        self.encoder_hid_proj = nn.Linear(encoder_hid_dim, cross_attention_dim) if encoder_hid_dim_type else None
        if class_embed_type == "timestep":
            self.class_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim, act_fn=act_fn)
        elif num_class_embeds is not None:
            self.class_embedding = nn.Embedding(num_class_embeds, time_embed_dim)
        else:
            self.class_embedding = None
        if addition_embed_type == "text":
            self.add_embedding = TextTimeEmbedding(encoder_hid_dim or cross_attention_dim, time_embed_dim,
                                                   num_heads=addition_embed_type_num_heads)
        self.time_embed_act = get_activation(time_embedding_act_fn) if time_embedding_act_fn else None

        shared = dict(temb_channels=time_embed_dim, eps=norm_eps, act=act_fn, groups=norm_num_groups,
                      time_scale_shift=resnet_time_scale_shift, out_scale=resnet_out_scale_factor,
                      skip_time_act=resnet_skip_time_act, cross_attention_dim=cross_attention_dim,
                      cross_attention_norm=cross_attention_norm)
        self.down_blocks = nn.ModuleList()
        out_ch = block_out_channels[0]
        for i, kind in enumerate(down_block_types):
            in_ch, out_ch = out_ch, block_out_channels[i]
            self.down_blocks.append(get_down_block(
                kind, in_channels=in_ch, out_channels=out_ch, num_layers=layers[i], add_downsample=i < n - 1,
                attention_head_dim=head_dims[i], num_attention_heads=head_dims[i], only_cross_attention=only_cross[i],
                downsample_padding=downsample_padding, **shared))

        if mid_block_type == "UNetMidBlock3DSimpleCrossAttn":
            self.mid_block = UNetMidBlock3DSimpleCrossAttn(
                block_out_channels[-1], temb_channels=time_embed_dim, eps=norm_eps, act=act_fn, groups=norm_num_groups,
                time_scale_shift=resnet_time_scale_shift, out_scale=mid_block_scale_factor,
                skip_time_act=resnet_skip_time_act, attention_head_dim=head_dims[-1],
                cross_attention_dim=cross_attention_dim, only_cross_attention=mid_only_cross,
                cross_attention_norm=cross_attention_norm)
        elif mid_block_type == "UNetMidBlock3DCrossAttn":
            self.mid_block = UNetMidBlock3DCrossAttn(
                in_channels=block_out_channels[-1], temb_channels=time_embed_dim, resnet_eps=norm_eps,
                resnet_act_fn=act_fn, output_scale_factor=mid_block_scale_factor,
                resnet_time_scale_shift=resnet_time_scale_shift, cross_attention_dim=cross_attention_dim,
                num_attention_heads=modelscope_heads(block_out_channels[-1], head_dims[-1]),
                resnet_groups=norm_num_groups, use_linear_projection=False)
        elif mid_block_type is None:
            self.mid_block = None
        else:
            raise ValueError(f"Show1UNet3D: unknown mid_block_type {mid_block_type!r}")

        self.up_blocks = nn.ModuleList()
        rev_ch, rev_layers = list(reversed(block_out_channels)), list(reversed(layers))
        rev_only_cross = list(reversed(only_cross))
        out_ch = rev_ch[0]
        for i, kind in enumerate(up_block_types):
            prev_ch, out_ch = out_ch, rev_ch[i]
            in_ch = rev_ch[min(i + 1, n - 1)]
            self.up_blocks.append(get_up_block(
                kind, in_channels=in_ch, prev_output_channel=prev_ch, out_channels=out_ch, num_layers=rev_layers[i] + 1,
                add_upsample=i < n - 1, attention_head_dim=head_dims[i],  # official: not reversed
                num_attention_heads=list(reversed(head_dims))[i], only_cross_attention=rev_only_cross[i], **shared))

        if norm_num_groups is not None:
            self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=norm_eps)
            self.conv_act = get_activation(act_fn)
        else:
            self.conv_norm_out = self.conv_act = None
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, conv_out_kernel,
                                  padding=(conv_out_kernel - 1) // 2)
        use_frame_convs(self)

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                class_labels: torch.Tensor | None = None, cross_attention_kwargs: dict | None = None,
                return_dict: bool = True):
        """sample (B, C, F, H, W); timestep scalar or (B,); encoder_hidden_states (B, L, encoder_hid_dim);
        class_labels (B,) noise levels when `class_embed_type` is "timestep". Returns (B, out_channels, F, H, W)."""
        b, _, f, h, w = sample.shape
        up_factor = 2 ** (len(self.up_blocks) - 1)
        forward_upsample_size = h % up_factor != 0 or w % up_factor != 0
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0
        t = timestep if torch.is_tensor(timestep) else torch.tensor(
            [timestep], dtype=torch.float64 if isinstance(timestep, float) else torch.int64, device=sample.device)
        t = t.reshape(-1).to(sample.device).expand(b) if t.numel() == 1 else t.to(sample.device)
        emb = self.time_embedding(self.time_proj(t).to(sample.dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("Show1UNet3D: this model needs class_labels (the noise level)")
            if self.config.class_embed_type == "timestep":
                class_labels = self.time_proj(class_labels.reshape(-1).expand(b) if class_labels.numel() == 1
                                              else class_labels).to(sample.dtype)
            emb = emb + self.class_embedding(class_labels).to(sample.dtype)
        if self.config.addition_embed_type == "text":
            emb = emb + self.add_embedding(encoder_hidden_states)
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        if self.encoder_hid_proj is not None:
            encoder_hidden_states = self.encoder_hid_proj(encoder_hidden_states)

        emb = emb.repeat_interleave(f, dim=0)
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(f, dim=0)
        x = sample.permute(0, 2, 1, 3, 4).reshape(b * f, -1, h, w)
        x = self.conv_in(x)
        if self.config.transfromer_in_opt:
            x = self.transformer_in(x, num_frames=f, cross_attention_kwargs=cross_attention_kwargs).sample
        skips = (x,)
        for block in self.down_blocks:
            x, res = block(hidden_states=x, temb=emb, encoder_hidden_states=encoder_hidden_states, num_frames=f,
                           cross_attention_kwargs=cross_attention_kwargs) if getattr(block, "has_cross_attention", False) else \
                block(hidden_states=x, temb=emb, num_frames=f)
            skips += res
        if self.mid_block is not None:
            x = self.mid_block(x, emb, encoder_hidden_states=encoder_hidden_states, num_frames=f,
                               cross_attention_kwargs=cross_attention_kwargs)
        for i, block in enumerate(self.up_blocks):
            res, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
            kw = {"upsample_size": skips[-1].shape[2:]} if forward_upsample_size and i < len(self.up_blocks) - 1 \
                else {}
            if getattr(block, "has_cross_attention", False):
                kw.update(encoder_hidden_states=encoder_hidden_states, cross_attention_kwargs=cross_attention_kwargs)
            x = block(hidden_states=x, res_hidden_states_tuple=res, temb=emb, num_frames=f, **kw)
        if self.conv_norm_out is not None:
            x = self.conv_act(self.conv_norm_out(x))
        x = self.conv_out(x)
        x = x.reshape(b, f, *x.shape[1:]).permute(0, 2, 1, 3, 4)
        return Show1UNetOutput(sample=x) if return_dict else (x,)
