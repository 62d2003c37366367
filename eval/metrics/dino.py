"""Temporal consistency on DINO features in MTBench's form (DeT's `evaluation.py`, `calculate_dino`): a
transformers ViT (`--dino-model hf:ID_OR_DIR`, MTBench's is facebook/dino-vitb16), its `pooler_output` per frame,
L2-normalised; the video's value is ½(mean over frames of cos(fₜ, f₁) + mean over frames of cos(fₜ, fₜ₋₁)), the
first frame counted against itself in both means.

Frames are preprocessed on the device in batches by the CLIP metric's rules (`eval.metrics.clip.Preprocess`,
the model's own image processor settings mapped exactly, or refused).
"""

from __future__ import annotations

import numpy as np
import torch

from eval.errors import MetricUndefined, UserError
from eval.metrics.base import Field, Metric, Sample
from eval.metrics.clip import (APPEARANCE, HF_PREFIX, HFSource, Preprocess, default_dtype, encode_batched,
                               hf_preprocess_cfg)

MTBENCH_DINO = "hf:facebook/dino-vitb16"  # MTBench's model (ViTModel + ViTImageProcessor)
POOLER_SEED = 0


def temporal_consistency_mtbench(similarity) -> float:
    """MTBench's consistency from the T×T matrix of frame cosines: ½((1/T) Σₜ S[t, 1] + (1/T) Σₜ S[t, t−1]) with
    t = 1…T and S[1, 0] read as S[1, 1] (MTBench's previous-frame index of the first frame is the first frame)."""
    sim = np.asarray(similarity, dtype=np.float64)
    t = sim.shape[0]
    if t < 2:
        raise MetricUndefined(f"temporal consistency needs at least 2 frames, got {t}")
    first = sim[:, 0].mean()
    previous = (sim[0, 0] + np.diagonal(sim, offset=-1).sum()) / t
    return float(0.5 * (first + previous))


def load_hf_dino(source: str, device: torch.device, dtype: torch.dtype, pooler_seed: int = POOLER_SEED):
    """A transformers vision model with a `pooler_output` and its image processor, from a local folder or a hub
    id. A pooler missing from the checkpoint (facebook/dino-vitb16 ships none: transformers initialises it at
    random at every load, which is what MTBench's code scores with) is initialised as transformers does, from
    `pooler_seed`; any other missing weight is refused. Returns (model, spec, preprocess_cfg)."""
    from transformers import AutoModel

    src = HFSource(source, "--dino-model")
    where = src.where
    if getattr(src.config, "model_type", None) != "vit":
        raise UserError(f"{where}: not a ViT model (model_type '{src.config.model_type}'); MTBench's DINO "
                        "consistency reads a transformers ViTModel's pooler_output")
    try:
        net, info = AutoModel.from_pretrained(src.ref, local_files_only=src.offline, dtype=dtype,
                                              output_loading_info=True)
        proc = src.image_processor()
    except Exception as e:
        raise UserError(f"{where}: cannot load the model and image processor: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    missing = sorted(info.get("missing_keys") or [])
    if getattr(net, "pooler", None) is None:
        raise UserError(f"{where}: the model has no pooler, so no pooler_output")
    others = [k for k in missing if not k.startswith("pooler.")]
    if others:
        raise UserError(f"{where}: the checkpoint lacks weights {', '.join(others[:4])}"
                        f"{' …' if len(others) > 4 else ''}")
    if missing:
        g = torch.Generator().manual_seed(pooler_seed)
        dense = net.pooler.dense
        std = getattr(src.config, "initializer_range", None) or 0.02
        with torch.no_grad():  # as transformers' _init_weights: weight N(0, initializer_range²), bias 0
            dense.weight.copy_(torch.empty(dense.weight.shape).normal_(0.0, std, generator=g))
            dense.bias.zero_()
        pooler = (f"not in the checkpoint: initialised as transformers does (weight normal, std {std}, bias 0) "
                  f"from torch.Generator().manual_seed({pooler_seed}); MTBench's code draws it unseeded")
    else:
        pooler = "from the checkpoint"
    net.to(device).eval().requires_grad_(False)
    spec = {"model": src.name, **src.weights(), "pooler": pooler,
            "feature": "pooler_output, L2-normalised"}
    return net, spec, hf_preprocess_cfg(proc, where)


class DinoMetric(Metric):
    """MTBench's temporal consistency on DINO pooler outputs. Computed when asked for (`--metrics`), when
    `--dino-model` is given, or when the benchmark's `metrics` section names a `dino_model` or sets
    `mtbench: true`; the frames of several videos share encoder batches."""

    name = "dino"
    fields = {
        "temporal_consistency_mtbench": Field("MTBench's temporal consistency: ½(mean over frames of cos(fₜ, f₁) + "
                                              "mean of cos(fₜ, fₜ₋₁)), the first frame against itself in both, "
                                              "on DINO ViT pooler outputs", range=(-1.0, 1.0),
                                              checked_by=APPEARANCE),
    }
    default = False

    @classmethod
    def wanted(cls, options, defaults: dict) -> bool:
        return bool(getattr(options, "dino_model", None) or defaults.get("dino_model") or defaults.get("mtbench"))

    @classmethod
    def add_options(cls, group):
        group.add_argument("--dino-model", default=None, metavar="hf:ID_OR_DIR",
                           help="transformers ViT of the dino metric: a save_pretrained folder or a hub id in the "
                                f"Hugging Face cache (default: the benchmark's, else {MTBENCH_DINO})")
        group.add_argument("--dino-dtype", choices=["fp32", "fp16", "bf16"], default=None,
                           help="DINO compute dtype (default: fp16 on GPU, fp32 on CPU)")

    @classmethod
    def from_options(cls, options, defaults: dict, device: str | None) -> "DinoMetric":
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(options.dino_dtype)
        return cls(model=options.dino_model or defaults.get("dino_model", MTBENCH_DINO), device=device,
                   dtype=dtype, batch_size=options.batch_size)

    def __init__(self, model: str = MTBENCH_DINO, device: str | None = None, dtype: torch.dtype | None = None,
                 batch_size: int = 256):
        if not model.startswith(HF_PREFIX):
            raise UserError(f"--dino-model: give hf:ID_OR_DIR (a transformers ViT), got {model!r}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or default_dtype(self.device)
        self.model, spec, cfg = load_hf_dino(model.removeprefix(HF_PREFIX), self.device, self.dtype)
        self.preprocess = Preprocess(cfg)
        self.batch_size = batch_size
        self._spec = {**spec, "preprocessing": self.preprocess.describe(), "frames": "all",
                      "dtype": str(self.dtype).removeprefix("torch."), "library": "transformers",
                      "form": "DeT evaluation.py calculate_dino"}

    def spec(self) -> dict:
        return dict(self._spec)

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).pooler_output

    def encode_images(self, frames) -> torch.Tensor:
        """uint8 N×H×W×3 → unit-norm float32 pooler outputs N×D, in batches of `batch_size`."""
        return encode_batched(self._encode, self.preprocess, frames, self.device, self.dtype, self.batch_size)

    def score_many(self, samples: list[Sample]):
        """The frames of all samples of one frame size are encoded together in shared batches."""
        feats: dict[int, torch.Tensor] = {}
        for shape in dict.fromkeys(s.frames.shape[1:] for s in samples):
            group = [i for i, s in enumerate(samples) if s.frames.shape[1:] == shape]
            encoded = self.encode_images(torch.cat([torch.as_tensor(samples[i].frames) for i in group])).double()
            for i, f in zip(group, torch.split(encoded, [len(samples[i].frames) for i in group])):
                feats[i] = f
        out = []
        for i in range(len(samples)):
            sim = (feats[i] @ feats[i].T).cpu().numpy()
            try:
                value = temporal_consistency_mtbench(sim)
            except MetricUndefined as e:
                value = e
            out.append(({"temporal_consistency_mtbench": value},
                        {"dino_frame_similarity": np.round(sim, 5).tolist()}))
        return out

    def score(self, sample: Sample):
        return self.score_many([sample])[0]
