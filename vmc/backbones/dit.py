"""Video diffusion transformers: the Wan 2.1 and CogVideoX layouts on diffusers' stock classes.

A folder in either layout (`model_index.json` naming `WanPipeline` or `CogVideoXPipeline`: transformer/, vae/,
text_encoder/, tokenizer/, scheduler/) is one stage, "video", answering the calls every method makes of a
backbone (as vmc.backbones.latent does): text embeddings as the stock pipeline encodes them (its own
`_get_t5_prompt_embeds`: UMT5 for Wan, padded to 512 tokens with the padding zeroed; T5 for CogVideoX, 226
tokens), the reference encoded by the VAE (the distribution's mean, normalised as the pipeline does), the
project's keyframe sampler with its guidance hook, and DDIM inversion.

Frames. Both VAEs compress time 4× causally: latent frame 0 is video frame 0 alone, latent frame j ≥ 1 encodes
video frames 4j−3 … 4j, so a clip of 1 + 4k frames has 1 + k latent frames. `num_frames` must be of that form
(Wan 2.1: 81 → 21 latent frames; CogVideoX: 49 → 13); the reference is resampled to it by the suite's one rule
(eval.video.Video.sample: uniform in time, first and last frame kept). The methods' frame axis is the latent one:
VMC's residuals, MotionDirector's one-frame path and DMT's per-frame means are taken over latent frames.

One parametrisation for both layouts. The transformer is wrapped (`DiTDenoiser`) so that it looks like a
v-prediction DDPM model over integer timesteps 0…999 with a table ᾱ_t, in the (B, C, F, h, w) latent layout
the suite uses; the samplers, the trainers, the losses and the inversion then run unchanged:
- CogVideoX is such a model: ᾱ_t is its CogVideoXDDIMScheduler's (zero terminal SNR, `snr_shift_scale`), and
  DDIM with v-prediction and trailing spacing is that scheduler's step (tests/test_dit.py checks it).
- Wan 2.1 is a flow-matching model, x_σ = (1−σ)·x₀ + σ·ε, velocity v = ε − x₀, timestep σ·1000 at
  σ_t = s·u/(1+(s−1)·u), u = (t+1)/1000, s the flow shift (FlowMatchEulerDiscreteScheduler's training sigmas).
  Dividing by N = √((1−σ)² + σ²) gives a DDPM sample x = √ᾱ·x₀ + √(1−ᾱ)·ε with √ᾱ = (1−σ)/N, so the wrapper
  maps x to N·x, runs the transformer at σ·1000 and returns the DDPM v = √ᾱ·ε̂ − √(1−ᾱ)·x̂₀ made of the
  ε̂ = x_σ + (1−σ)·v̂ and x̂₀ = x_σ − σ·v̂ the predicted velocity implies. A deterministic DDIM step from level σ to
  σ' is then x_σ' = (1−σ')·x̂₀ + σ'·ε̂ in flow coordinates: exactly the flow ODE's Euler step (Wan's
  FlowMatchEuler sampler), and DDIM inversion is that Euler step run backwards (ε̂ at the next level).
  The sampler's levels are DDIM's trailing ones (t = 999, 979, … for 50 steps: σ from 1 to the shift of
  0.02, then 0), where FlowMatchEulerDiscreteScheduler spaces σ from 1 to the shift of 0.001 over the same count:
  the same ODE, a slightly different grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from eval.errors import UserError, read_json
from vmc.backbones.base import Backbone, BackbonePipeline, SamplingSettings, Source

STAGES = ("video",)
TRAIN_STEPS = 1000
LAYOUTS = {"WanPipeline": "wan", "CogVideoXPipeline": "cogvideox"}  # model_index.json's _class_name → layout
PARTS = ("model_index.json", "transformer/config.json", "vae/config.json", "text_encoder/config.json", "tokenizer/",
         "scheduler/scheduler_config.json")  # what a folder of either layout holds
# each layout's published defaults over DiTSettings' (Wan 2.1's): CogVideoX-2b's model card and pipeline
LAYOUT_DEFAULTS = {"wan": {}, "cogvideox": {"num_frames": 49, "height": 480, "width": 720, "keyframe_guidance": 6.0,
                                            "fps": 8.0, "text_length": 226}}


@dataclass
class DiTSettings(SamplingSettings):
    """Wan 2.1 T2V 1.3B's published defaults (WanPipeline and its model card: 81 frames at 480×832, 50 steps,
    guidance 5, flow shift 3.0 at 480p, 16 fps, 512 text tokens); the first stage's names are the whole video's."""

    num_frames: int = 81
    height: int = 480
    width: int = 832
    keyframe_steps: int = 50
    keyframe_guidance: float = 5.0
    fps: float = 16.0
    text_length: int = 512  # text tokens (Wan 512, CogVideoX 226)
    flow_shift: float | None = None  # Wan: None takes the folder scheduler's (flow_shift or shift)


def method_defaults(layout: str, num_layers: int) -> dict:
    """The kind's own method settings (a folder's cascade.json entries go over them): vmc adapts the blocks'
    self-attention q/k/v (rule self_qkv), dmt reads the output of the middle block and ditflow the attention of the
    middle block (DiTFlow's choice: block 15 of CogVideoX-2B's 30)."""
    blocks = "blocks" if layout == "wan" else "transformer_blocks"
    return {"vmc": {"rule": "self_qkv"}, "dmt": {"features": [f"transformer.{blocks}.{num_layers // 2}"]},
            "ditflow": {"block": num_layers // 2}}


def dit_backbone(source: Source, layout: str, name: str, meta: dict, where: str, num_layers: int = 30) -> Backbone:
    """A Wan / CogVideoX backbone with the settings of `meta` (a cascade.json's content, or a hub profile's)
    over the layout's published ones."""
    try:
        settings = DiTSettings(**{**LAYOUT_DEFAULTS[layout], **meta.get("settings", {})})
    except TypeError as e:
        raise UserError(f"{where}: {e}") from None
    if (settings.num_frames - 1) % 4:
        raise UserError(f"{where}: num_frames {settings.num_frames}: a {layout} backbone takes 1 + 4k frames "
                        "(its VAE compresses time 4×)")
    methods = method_defaults(layout, num_layers)
    for key, value in meta.items():
        if isinstance(value, dict) and key not in ("settings", "training"):
            methods[key] = {**methods.get(key, {}), **value}
    return Backbone(source, name=meta.get("name", name), settings=settings, kind="dit", layout=layout,
                    adaptation=methods, training=meta.get("training", {}))


def flow_sigmas(shift: float) -> torch.Tensor:
    """σ_t for t = 0…999 in float64: FlowMatchEulerDiscreteScheduler's training sigmas, shifted."""
    u = torch.arange(1, TRAIN_STEPS + 1, dtype=torch.float64) / TRAIN_STEPS
    return shift * u / (1 + (shift - 1) * u)


def flow_alphas_cumprod(sigmas: torch.Tensor) -> torch.Tensor:
    """The DDPM ᾱ of each flow level: (1−σ)² / ((1−σ)² + σ²)."""
    return (1 - sigmas) ** 2 / ((1 - sigmas) ** 2 + sigmas ** 2)


class DiTDenoiser(nn.Module):
    """A Wan or CogVideoX transformer as a v-prediction DDPM model: `(x, t, text).sample`, x (B, C, F, h, w) at
    integer timesteps (the module docstring says how). Its parameters keep the transformer's names under
    `transformer.` (e.g. transformer.blocks.0.attn1.to_q.weight)."""

    _supports_gradient_checkpointing = True

    def __init__(self, transformer: nn.Module, layout: str, sigmas: torch.Tensor | None = None,
                 rotary=None):
        super().__init__()
        self.transformer, self.layout = transformer, layout
        self.sigmas = sigmas  # Wan: σ_t (float64), not a buffer: nothing of it is saved or cast
        self.rotary = rotary  # CogVideoX 5B: (frames, h, w) → the pipeline's rotary embeddings

    @property
    def config(self):
        return self.transformer.config

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.dtype

    def enable_gradient_checkpointing(self):
        self.transformer.enable_gradient_checkpointing()

    def disable_gradient_checkpointing(self):
        self.transformer.disable_gradient_checkpointing()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.transformer.is_gradient_checkpointing

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor, class_labels=None):
        b = sample.shape[0]
        t = torch.as_tensor(timestep, device=sample.device).long().reshape(-1).expand(b)
        text = encoder_hidden_states.expand(b, -1, -1) if encoder_hidden_states.shape[0] == 1 else encoder_hidden_states
        if self.layout == "cogvideox":
            x = sample.permute(0, 2, 1, 3, 4)
            rotary = self.rotary(*x.shape[1:2], *x.shape[3:]) if self.rotary else None
            v = self.transformer(x, text, t, image_rotary_emb=rotary).sample.permute(0, 2, 1, 3, 4)
            return SimpleNamespace(sample=v)
        sigma = self.sigmas.to(sample.device)[t].view(-1, 1, 1, 1, 1)
        norm = ((1 - sigma) ** 2 + sigma ** 2).sqrt()
        velocity = self.transformer((sample * norm).to(sample.dtype), (sigma.flatten() * TRAIN_STEPS).float(),
                                    text).sample
        v = (1 - 2 * sigma) * sample + norm * velocity  # = √ᾱ·ε̂ − √(1−ᾱ)·x̂₀ (module docstring)
        return SimpleNamespace(sample=v.to(velocity.dtype))


class DiTPipeline(BackbonePipeline):
    """Wan 2.1 or CogVideoX (`backbone.layout`) as the suite's one-stage "video" backbone."""

    kind = "dit"
    description = "a video diffusion transformer (Wan 2.1 / CogVideoX)"
    layout = "a diffusers WanPipeline or CogVideoXPipeline folder (" + ", ".join(PARTS) + ")"
    settings_class = DiTSettings
    known_stages = STAGES
    model_index_classes = tuple(LAYOUTS)

    @classmethod
    def from_dir(cls, root: Path, note) -> Backbone:
        cls.check_parts(root, PARTS)
        layout = LAYOUTS[read_json(root / "model_index.json").get("_class_name")]
        path = root / "cascade.json"
        meta = read_json(path) if path.is_file() else {}
        try:
            num_layers = json.loads((root / "transformer" / "config.json").read_text())["num_layers"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{root}: unreadable transformer/config.json ({e})") from None
        return dit_backbone(Source(str(root)), layout, root.name, meta, str(path), num_layers)

    @classmethod
    def from_profile(cls, name: str, sources: dict[str, Source], profile: dict) -> Backbone:
        """A hub profile: its layout's published settings (both published models have 30 blocks)."""
        return dit_backbone(sources["base"], profile["layout"], name, {"settings": profile.get("settings", {})}, name)

    def __init__(self, backbone, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        # on a GPU, the published dtypes: Wan 2.1 bf16 (its model card), CogVideoX-2B fp16
        if dtype is None and torch.device(device).type == "cuda" and backbone.layout == "wan":
            dtype = torch.bfloat16
        super().__init__(backbone, device, dtype)
        self.model_layout = backbone.layout  # "wan" or "cogvideox" (the class's `layout` says what folders it reads)
        self._vae = None
        self._table = None

    # parts ---------------------------------------------------------------------------------------------
    def unet_class(self):
        return DiTDenoiser

    def scheduler_class(self):
        """DDIM over the layout's own noise levels (load_scheduler builds it from the table)."""
        from diffusers import DDIMScheduler

        return DDIMScheduler

    def transformer_class(self):
        from diffusers import CogVideoXTransformer3DModel, WanTransformer3DModel

        return WanTransformer3DModel if self.model_layout == "wan" else CogVideoXTransformer3DModel

    def load_unet(self, source):
        transformer = self._load(self.transformer_class(), source, "transformer", torch_dtype=self.dtype)
        rotary = None
        if self.model_layout == "cogvideox":
            config = transformer.config
            if config.get("patch_size_t"):
                raise UserError(f"{source.path}: CogVideoX 1.5 (temporal patches) is not supported; "
                                "CogVideoX-2b and -5b are")
            if config.use_rotary_positional_embeddings:
                rotary = self._rotary(transformer)
        return DiTDenoiser(transformer, self.model_layout, self._sigmas(), rotary).to(self.device).eval()

    def _rotary(self, transformer):
        """CogVideoX 5B's rotary embeddings, as CogVideoXPipeline prepares them (its own method)."""
        from diffusers import CogVideoXPipeline

        pipe = SimpleNamespace(transformer=transformer, vae_scale_factor_spatial=self.vae_scale)

        def rotary(frames, h, w):
            return CogVideoXPipeline._prepare_rotary_positional_embeddings(pipe, h * self.vae_scale, w * self.vae_scale,
                                                                           frames, self.device)
        return rotary

    def _source_scheduler(self):
        from diffusers import CogVideoXDDIMScheduler, FlowMatchEulerDiscreteScheduler

        return self._load(FlowMatchEulerDiscreteScheduler if self.model_layout == "wan" else CogVideoXDDIMScheduler,
                          self.backbone.base, "scheduler")

    def _sigmas(self):
        if self.model_layout != "wan":
            return None
        shift = self.settings.flow_shift
        if shift is None:
            config = self._source_scheduler().config
            shift = config.get("flow_shift", config.get("shift", 1.0))
        return flow_sigmas(float(shift))

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t, t = 0…999, in float64: Wan's from its flow levels, CogVideoX's from its own scheduler."""
        if self._table is None:
            self._table = (flow_alphas_cumprod(self._sigmas()) if self.model_layout == "wan"
                           else self._source_scheduler().alphas_cumprod.double())
        return self._table

    def load_scheduler(self, source=None, subfolder: str = "scheduler", cls=None):
        """The DDIM scheduler of the table: v-prediction, trailing timesteps (sampling starts at t = 999, pure
        noise: ᾱ ≈ 0), the last step to the clean sample (set_alpha_to_one)."""
        from diffusers import DDIMScheduler

        a = self.alphas_cumprod
        betas = 1 - a / torch.cat([a.new_ones(1), a[:-1]])
        return DDIMScheduler(num_train_timesteps=TRAIN_STEPS, trained_betas=betas.tolist(), clip_sample=False,
                             set_alpha_to_one=True, steps_offset=0, prediction_type="v_prediction",
                             timestep_spacing="trailing")

    def inversion_scheduler(self, schedule: str, base_config: dict):
        """DDIM inversion through the sampler's own levels (the official sd15 quirk is for ε-prediction UNets)."""
        if schedule != "base":
            raise ValueError(f"inversion schedule '{schedule}': a {self.model_layout} backbone inverts with its own "
                             "schedule only (base)")
        return self.load_scheduler()

    @property
    def vae(self):
        if self._vae is None:
            from diffusers import AutoencoderKLCogVideoX, AutoencoderKLWan

            cls = AutoencoderKLWan if self.model_layout == "wan" else AutoencoderKLCogVideoX
            # Wan's pipeline keeps its VAE in fp32 (its published example); CogVideoX's in the model's dtype
            dtype = torch.float32 if self.model_layout == "wan" else self.dtype
            self._vae = self._load(cls, self.backbone.base, "vae", torch_dtype=dtype).to(self.device)
            self._vae.eval().requires_grad_(False)
        return self._vae

    @property
    def vae_scale(self) -> int:
        """Spatial compression (8 in both published VAEs), read from the VAE's config as the pipelines do."""
        config = self.vae.config
        if self.model_layout == "wan":
            return 2 ** len(config.temperal_downsample)
        return 2 ** (len(config.block_out_channels) - 1)

    @property
    def time_scale(self) -> int:
        config = self.vae.config
        return 2 ** sum(config.temperal_downsample) if self.model_layout == "wan" else config.temporal_compression_ratio

    @property
    def sample_size(self) -> tuple[int, int]:
        s, f = self.settings, self.vae_scale
        return s.height // f, s.width // f

    @property
    def latent_frames(self) -> int:
        return 1 + (self.settings.num_frames - 1) // self.time_scale

    def fps(self, stage: str) -> float:
        return self.settings.fps

    # text ------------------------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[str]) -> list[torch.Tensor]:
        """Each prompt's embeddings by the stock pipeline's own encoding (its `_get_t5_prompt_embeds`)."""
        from diffusers import CogVideoXPipeline, WanPipeline
        from transformers import AutoTokenizer, T5EncoderModel, UMT5EncoderModel

        src = self.backbone.base
        encoder_cls, pipe_cls = ((UMT5EncoderModel, WanPipeline) if self.model_layout == "wan"
                                 else (T5EncoderModel, CogVideoXPipeline))
        tokenizer = self._load(AutoTokenizer, src, "tokenizer")
        encoder = self._load(encoder_cls, src, "text_encoder", torch_dtype=self.dtype).to(self.device).eval()
        parts = SimpleNamespace(tokenizer=tokenizer, text_encoder=encoder)
        with torch.no_grad():
            out = pipe_cls._get_t5_prompt_embeds(parts, prompts, max_sequence_length=self.settings.text_length,
                                                 device=self.device, dtype=self.dtype)
        self.release(encoder)
        return list(out)

    # latents ---------------------------------------------------------------------------------------------
    def _latent_stats(self, like: torch.Tensor):
        """(μ, σ) with normalised latents (z − μ)/σ, as the stock pipelines normalise: Wan's per-channel
        latents_mean / latents_std, CogVideoX's 0 and 1/scaling_factor."""
        config = self.vae.config
        if self.model_layout == "wan":
            shape = (1, config.z_dim, 1, 1, 1)
            return tuple(torch.tensor(v).view(shape).to(like) for v in (config.latents_mean, config.latents_std))
        return torch.zeros((), device=like.device), torch.tensor(1 / config.scaling_factor, device=like.device)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) in [-1, 1], F = 1 + 4k → (B, C, 1 + k, H/8, W/8) normalised latents (Wan: (z − μ)/σ per
        channel; CogVideoX: z · scaling_factor), the mean of the VAE's distribution."""
        vae = self.vae
        z = vae.encode(video.to(self.device, vae.dtype)).latent_dist.mean.float()
        mean, std = self._latent_stats(z)
        return (z - mean) / std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, f, h, w) latents → (B, 3, 1 + 4(f−1), H, W) frames in [-1, 1] (clamped)."""
        vae = self.vae
        mean, std = self._latent_stats(latents.float())
        frames = vae.decode((latents.float() * std + mean).to(vae.dtype)).sample
        return frames.float().clamp(-1, 1)

    # sampling --------------------------------------------------------------------------------------------
    @property
    def sample_frames(self) -> int:
        """Latent frames: 1 + (num_frames − 1) / 4 (the module docstring)."""
        return self.latent_frames

    def run(self, prompt: str, seed: int = 0, stages=None, init_latents=None, keyframe_unet=None,
            guidance=None) -> dict:
        """{"video": (B, 3, F, H, W) in [-1, 1]} (BackbonePipeline.run)."""
        self.check_stages(stages or STAGES)
        return {"video": self.decode(self.sample_keyframes(prompt, seed, init_latents, keyframe_unet, guidance))}
