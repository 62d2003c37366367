"""`ditflow`: DiTFlow ("Video Motion Transfer with Diffusion Transformers", Pondaven et al., CVPR 2025),
training-free Attention Motion Flow guidance on a video diffusion transformer.

Followed: github.com/ditflow/ditflow at 4db379b3caf1845ca45f5d382589b54245a137af (motion_guidance.py,
guidance_utils/motion_flow_utils.py, configs/guidance_config.yaml; CogVideoX-2B / 5B).

AMF (`compute_motion_flow`): the queries and keys of one block's self-attention `attn1` (`block`: official 15 of
CogVideoX-2B's 30 layers, 20 of 5B's 42; by default the middle block, num_layers // 2, on any DiT), after the
QK-norm and the rotary embedding, video tokens only, conditional branch. A = QKᵀ/√d averaged over the heads
before the softmax; for every pair of latent frames (i, j), i = j included, a softmax over frame j's h·w tokens
of `temperature`·A (official `motion_temp` 2); each query token's displacement is the key position minus its own,
in patch units (dx, dy): for the reference the argmax's (argmax_motion_flow), for the generated video the
expectation under the softmax. Shape [F², h·w, 2]. The loss is the MSE over the tokens whose reference
displacement is nonzero (`threshloss`).

Reference: one pass of the DiT at t = 0 on the clip's clean latent with the empty prompt (no noising, no
inversion). Guidance: the first 20% of the sampling steps (`guided_share`; official 10 of 50), each with
`iterations` 5 Adam steps on an fp32 copy of the noisy latent (`latent` mode, the official default; the
positional-embedding modes `rope` / `posemb` are not offered) at a learning rate linspace(0.002, 0.001, guided + 1)
over the guided steps (`lr`), the transformer read up to the guidance block only (the later blocks are skipped, as
the official `change_mode`), then the backbone's usual CFG step.

Not reproduced: the official KV injection (on guided steps, block 0's video keys and values replaced by those of
the reference noised to the step's level with the sampler's initial noise); the official samplers (2B: DDIM
trailing, CFG 7; 5B: CogVideoX-DPM, dynamic CFG 7): here the backbone's own sampler and guidance, as for every
method. DiT-native: refused in one line on the UNet kinds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from eval.errors import UserError
from eval.manifest import Case
from eval.search_space import Param
from eval.settings import Setting
from vmc.families.guidance import Guidance, GuidanceMethod
from vmc.families.tuning import video_tensor

NOT_A_DIT = ("DiTFlow's attention motion flow reads a video diffusion transformer's joint space-time attention "
             "(DiT-native); this backbone is a UNet, whose attention is per frame or per location")


def patch_grid(positions: int, width: int, device) -> torch.Tensor:
    """(positions, 2) float (x, y) of the tokens of one frame, row-major over a grid `width` wide."""
    index = torch.arange(positions, device=device)
    return torch.stack([index % width, index // width], -1).float()


def attention_motion_flow(q: torch.Tensor, k: torch.Tensor, frames: int, width: int, temperature: float,
                          argmax: bool) -> torch.Tensor:
    """AMF of video-token queries and keys (heads, F·h·w, d) in (f, h, w) order: [F², h·w, 2] displacements
    (dx, dy) in patch units, pair (i, j) at i·F + j (the module docstring says how)."""
    heads, tokens, d = q.shape
    hw = tokens // frames
    logits = (q.float() @ k.float().transpose(-1, -2) / math.sqrt(d)).mean(0)  # (F·hw, F·hw), mean over heads
    logits = logits.reshape(frames, hw, frames, hw).permute(0, 2, 1, 3)  # [i, j, query, key]
    grid = patch_grid(hw, width, q.device)
    if argmax:
        return (grid[logits.argmax(-1)] - grid[None, None]).reshape(frames * frames, hw, 2)
    probs = torch.softmax(temperature * logits, -1)
    return (probs @ grid - grid[None, None]).reshape(frames * frames, hw, 2)


def amf_loss(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """MSE over the (pair, token) entries whose reference displacement is nonzero (official `threshloss`)."""
    moving = reference.norm(dim=-1) > 0
    if not moving.any():
        return (generated * 0).sum()  # a still reference: nothing to match, no gradient
    return F.mse_loss(generated[moving], reference[moving])


class BlockQK:
    """The queries and keys of a DiT block's attn1 as its processor uses them (after QK-norm and rotary, video
    tokens, (heads, F·h·w, d) of the last batch element, the official q[-1]), from the outputs of the modules it
    `names`, read by hooks in one forward pass that stops once they are read (vmc.models.features.UNetFeatures):
    CogVideoX's processor then applies the rotary embedding to the same tensors in place, which a pass run further
    would show here twice. Holds the transformer's sizes, not the transformer."""

    def __init__(self, unet, block: int, frames: int, latent_grid: tuple[int, int]):
        layout, config = unet.layout, unet.config
        blocks = "blocks" if layout == "wan" else "transformer_blocks"
        if not 0 <= block < config.num_layers:
            raise UserError(f"ditflow block {block}: the transformer has blocks 0…{config.num_layers - 1}")
        self.layout, self.frames, self.latent_grid = layout, frames, latent_grid
        p = config.patch_size if layout == "cogvideox" else config.patch_size[1]
        self.grid = (latent_grid[0] // p, latent_grid[1] // p)
        self.heads = config.num_attention_heads
        self.rotary = unet.rotary  # CogVideoX 5B's rotary embeddings, else None
        attn = f"transformer.{blocks}.{block}.attn1"
        qk = [f"{attn}.norm_q", f"{attn}.norm_k"]
        if dict(unet.named_modules()).get(qk[0]) is None:  # no QK-norm: the projections
            qk = [f"{attn}.to_q", f"{attn}.to_k"]
        self.qk = qk
        self.names = (*qk, "transformer.rope") if layout == "wan" else tuple(qk)

    def __call__(self, features: dict) -> tuple[torch.Tensor, torch.Tensor]:
        q, k = (features[n][-1] for n in self.qk)
        if self.layout == "wan":  # (S, heads·d) → (S, heads, d), rotary as WanAttnProcessor applies it
            cos, sin = features["transformer.rope"]
            q, k = (_wan_rotary(x.unflatten(-1, (self.heads, -1)), cos[-1], sin[-1]).transpose(0, 1)
                    for x in (q, k))
            return q, k
        if q.ndim == 2:  # to_q / to_k outputs (S, heads·d)
            q, k = (x.unflatten(-1, (self.heads, -1)).transpose(0, 1) for x in (q, k))
        video = self.frames * self.grid[0] * self.grid[1]
        q, k = q[:, -video:], k[:, -video:]  # CogVideoX attends over (text, video) tokens
        if self.rotary is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            rotary = self.rotary(self.frames, *self.latent_grid)
            q, k = apply_rotary_emb(q[None], rotary)[0], apply_rotary_emb(k[None], rotary)[0]
        return q, k


def _wan_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """WanAttnProcessor's rotary embedding on (S, heads, d)."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2).type_as(x)


class AMFGuidance(Guidance):
    def __init__(self, reference: torch.Tensor, qk: BlockQK, timesteps, learning_rates, iterations: int,
                 temperature: float):
        super().__init__(range(len(learning_rates)), timesteps)
        self.reference, self.qk, self.learning_rates = reference, qk, learning_rates
        self.iterations, self.temperature = iterations, temperature
        self.outputs = qk.names

    def guide(self, x, t, step, read):
        self.check_level(t, step)
        x = x.float().clone().requires_grad_(True)
        reference = self.reference.to(x.device)
        optimizer = torch.optim.Adam([x], lr=self.learning_rates[step])
        for _ in range(self.iterations):
            q, k = self.qk(read(x))
            flow = attention_motion_flow(q, k, self.qk.frames, self.qk.grid[1], self.temperature, argmax=False)
            (x.grad,) = torch.autograd.grad(amf_loss(flow, reference), x)
            optimizer.step()
        return x.detach()


class DiTFlowMethod(GuidanceMethod):
    name = "ditflow"
    unsupported_kinds = {"show1": NOT_A_DIT, "latent": NOT_A_DIT}
    defaults = {"block": 15, "temperature": 2.0, "guided_share": 0.2, "iterations": 5, "lr": [0.002, 0.001]}
    declared_settings = {"block": Setting(int, low=0),
                         "temperature": Setting(float, positive=True, search=Param(2.0, 0.5, 8.0, log=True)),
                         "guided_share": Setting(float, low=0, high=1, search=Param(0.2, 0.1, 0.6)),
                         "iterations": Setting(int, low=1, search=Param(5, 2, 10, integer=True)),
                         "lr": Setting(list, length=2, item=Setting(float, positive=True))}

    def _qk(self, unet) -> BlockQK:
        return BlockQK(unet, int(self.settings["block"]), self.cascade.latent_frames, self.cascade.sample_size)

    def adapt(self, case: Case) -> dict:
        """The reference AMF: one pass at t = 0 on the clip's clean latent with the empty prompt."""
        import time

        from vmc.models.features import UNetFeatures

        s, cascade = self.backbone.settings, self.cascade
        cascade.text_embeddings(["", *case.target_prompts, s.negative_prompt])  # one encoder load
        t0 = time.perf_counter()
        latents = cascade.encode(video_tensor(case.load_reference().sample(s.num_frames), s.height, s.width
                                              ).to(self.device))
        unet = cascade.stage_unet(self.backbone.base)
        qk = self._qk(unet)
        with torch.no_grad():
            q, k = qk(UNetFeatures(unet, outputs=qk.names)(latents.to(unet.dtype), 0, cascade.text_embeddings([""])[0]))
            reference = attention_motion_flow(q, k, qk.frames, qk.grid[1], self.settings["temperature"], argmax=True)
        cascade.done_with(unet)
        return {"reference": {"flow": reference.cpu(), "qk": qk},
                "protocol": {"trained_parameters": 0, "train_s": 0.0,
                             "features_s": round(time.perf_counter() - t0, 3)}}

    def read_reference(self, unet, latents, text):  # adapt() reads the clean clip, not an inversion
        raise NotImplementedError

    def make_guidance(self, reference) -> AMFGuidance:
        first, last = self.settings["lr"]
        rates = np.linspace(first, last, self.num_guided + 1)[:self.num_guided].tolist()
        return AMFGuidance(reference["flow"], reference["qk"], self.timesteps(), rates, int(self.settings["iterations"]),
                           float(self.settings["temperature"]))
