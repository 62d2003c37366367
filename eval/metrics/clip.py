"""CLIP metrics from open_clip: text alignment (raw cosine and the CLIPScore scale) and temporal consistency.

Frames go in as uint8 and are preprocessed on the device in batches, reproducing the model's own
`preprocess_cfg` (resize mode, interpolation, crop, mean/std); they are divided by 255 exactly once, which is
where float-input pipelines silently feed near-black images. One encoder pass per batch of frames, which
may span several videos; never one frame at a time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from eval.errors import MetricUndefined, UserError, read_json

RANDOM_WEIGHTS = "random"  # --clip-pretrained random: untrained weights, for benchmarks only


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on GPU (bf16 where fp16 is not supported), fp32 on CPU."""
    if device.type == "cuda":
        return torch.float16
    return torch.float32


def temporal_consistency(similarity) -> float:
    """Mean cosine over all unordered pairs of distinct frames, from the T×T matrix of frame cosines:
    (Σᵢⱼ Sᵢⱼ − tr S) / (T(T−1)), which on unit-norm features equals the closed form (‖Σf‖² − T) / (T(T−1))."""
    sim = np.asarray(similarity, dtype=np.float64)
    t = sim.shape[0]
    if t < 2:
        raise MetricUndefined(f"temporal consistency needs at least 2 frames, got {t}")
    return float((sim.sum() - np.trace(sim)) / (t * (t - 1)))


def load_open_clip(model: str, pretrained: str | None, device: torch.device, dtype: torch.dtype):
    """Build an open_clip model from a registry name or a model-config JSON path, with weights from a tag,
    a local checkpoint file, or `random`. Returns (model, tokenizer, model_name, weights_description)."""
    import open_clip

    model_name = model
    if model.endswith(".json") or Path(model).is_file():
        cfg_path = Path(model)
        if not cfg_path.is_file():
            raise UserError(f"{cfg_path}: no such open_clip model config")
        cfg = read_json(cfg_path)
        if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg):
            raise UserError(f"{cfg_path}: not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")
        open_clip.add_model_config(cfg_path)
        model_name = cfg_path.stem
    elif model not in open_clip.list_models():
        raise UserError(f"unknown CLIP model '{model}': give an open_clip model name (e.g. ViT-B-32) "
                        "or the path of a model-config JSON")
    precision = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    weights: dict
    if pretrained in (None, "", RANDOM_WEIGHTS):
        arg, weights = None, {"weights": RANDOM_WEIGHTS}
    elif Path(pretrained).is_file():
        arg, weights = str(pretrained), {"weights": Path(pretrained).name, "sha256": file_sha256(Path(pretrained))}
    elif "/" in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors", ".pth")):
        raise UserError(f"{pretrained}: no such CLIP checkpoint file")
    else:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in tags:
            raise UserError(f"CLIP model '{model_name}' has no pretrained tag '{pretrained}' "
                            f"(tags: {', '.join(tags) or 'none'}; or give a checkpoint file path)")
        arg, weights = pretrained, {"weights": pretrained}
    try:
        net = open_clip.create_model(model_name, pretrained=arg, precision=precision, device=device)
    except Exception as e:  # hub download and checkpoint errors come in many types
        where = f"checkpoint {pretrained}" if arg and Path(arg).is_file() else f"weights '{model_name}/{pretrained}'"
        raise UserError(f"cannot load CLIP {where}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        " — tagged weights download once on a machine with network access; offline, pass "
                        "--clip-pretrained PATH to a local checkpoint") from None
    net.eval().requires_grad_(False)
    return net, open_clip.get_tokenizer(model_name), model_name, weights


class Preprocess:
    """The model's own preprocessing, applied to uint8 N×H×W×3 batches on the device."""

    def __init__(self, cfg: dict):
        size = cfg["size"]
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.mode = cfg.get("resize_mode", "shortest")
        if self.mode not in ("shortest", "longest", "squash"):
            raise UserError(f"unsupported CLIP resize_mode '{self.mode}'")
        self.interpolation = InterpolationMode(cfg.get("interpolation", "bicubic"))
        self.mean = tuple(cfg["mean"])
        self.std = tuple(cfg["std"])
        self.fill = cfg.get("fill_color", 0)

    def describe(self) -> str:
        th, tw = self.size
        steps = {"shortest": f"resize shortest side to fit {th}×{tw} → center crop {th}×{tw}",
                 "longest": f"resize longest side to fit {th}×{tw} → center pad (fill {self.fill})",
                 "squash": f"resize to {th}×{tw}"}[self.mode]
        return (f"uint8 RGB → {steps} ({self.interpolation.value}, antialias, rounded to uint8 levels) → /255 → "
                f"normalize mean={self.mean} std={self.std}")

    def _resized_size(self, h: int, w: int) -> tuple[int, int]:
        th, tw = self.size
        if self.mode == "squash":
            return th, tw
        if self.mode == "shortest" and th == tw:  # torchvision Resize(int): short side = size, long side truncated
            short, long = (h, w) if h <= w else (w, h)
            new_long = int(th * long / short)
            return (th, new_long) if h <= w else (new_long, th)
        scale = max(th / h, tw / w) if self.mode == "shortest" else min(th / h, tw / w)
        return round(h * scale), round(w * scale)

    def __call__(self, frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """uint8 N×H×W×3 (any device) → normalized N×3×h×w in `dtype`."""
        x = frames.permute(0, 3, 1, 2).to(torch.float32)
        h, w = x.shape[-2:]
        nh, nw = self._resized_size(h, w)
        if (nh, nw) != (h, w):  # in float, rounded back to uint8 levels as PIL does (faster than uint8 on GPU)
            x = TF.resize(x, [nh, nw], interpolation=self.interpolation, antialias=True).round_().clamp_(0, 255)
        th, tw = self.size
        if self.mode == "shortest":
            top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
            x = x[..., top:top + th, left:left + tw]
        elif self.mode == "longest" and (nh, nw) != (th, tw):
            top, left = (th - nh) // 2, (tw - nw) // 2
            x = F.pad(x, (left, tw - nw - left, top, th - nh - top), value=self.fill)
        x = x.div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return ((x - mean) / std).to(dtype)


class ClipMetric:
    """text_alignment, clip_score and temporal_consistency of a video against its prompt.

    Contract: `score(frames_uint8, prompt)` → (values, details); `score_many` does the same for a list of
    videos with the frames of all of them packed into encoder batches of `batch_size`."""

    name = "clip"
    fields = {
        "text_alignment": "mean over frames of cos(frame, prompt), raw cosine (higher is better)",
        "clip_score": "mean over frames of 2.5·max(cos, 0), the CLIPScore scale (higher is better)",
        "temporal_consistency": "mean cosine over all pairs of distinct frames (higher is better)",
    }
    ranges = {"text_alignment": (-1.0, 1.0), "clip_score": (0.0, 2.5), "temporal_consistency": (-1.0, 1.0)}

    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = "openai", device: str | None = None,
                 dtype: torch.dtype | None = None, batch_size: int = 256, num_frames: int | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or default_dtype(self.device)
        self.model, self.tokenizer, self.model_name, weights = load_open_clip(model, pretrained, self.device,
                                                                              self.dtype)
        self.preprocess = Preprocess(dict(self.model.visual.preprocess_cfg))
        self.batch_size = batch_size
        self.num_frames = num_frames
        self._text_cache: dict[str, torch.Tensor] = {}
        self._spec = {"model": self.model_name, **weights, "preprocessing": self.preprocess.describe(),
                      "frames": f"uniform {num_frames}" if num_frames else "all",
                      "dtype": str(self.dtype).removeprefix("torch."), "library": "open_clip"}

    def spec(self) -> dict:
        return dict(self._spec)

    def frame_indices(self, total: int) -> list[int]:
        from eval.video import sample_indices

        return sample_indices(total, self.num_frames) if self.num_frames else list(range(total))

    @torch.inference_mode()
    def encode_images(self, frames) -> torch.Tensor:
        """uint8 N×H×W×3 (numpy or tensor) → unit-norm float32 N×D, in batches of `batch_size`."""
        x = torch.as_tensor(frames)
        if x.dtype != torch.uint8:
            raise TypeError(f"CLIP frames must be uint8, got {x.dtype}")
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            chunk = x[i:i + self.batch_size].to(self.device, non_blocking=True)
            out.append(self.model.encode_image(self.preprocess(chunk, self.dtype)).float())
        return F.normalize(torch.cat(out), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, prompts: list[str]) -> torch.Tensor:
        todo = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if todo:
            emb = self.model.encode_text(self.tokenizer(todo).to(self.device)).float()
            for p, e in zip(todo, F.normalize(emb, dim=-1)):
                self._text_cache[p] = e
        return torch.stack([self._text_cache[p] for p in prompts])

    @staticmethod
    def _values(cos: np.ndarray, sim: np.ndarray, indices: list[int]):
        """Statistics of one video from its per-frame prompt cosines and frame-by-frame cosines."""
        values = {"text_alignment": float(cos.mean()), "clip_score": float((2.5 * np.maximum(cos, 0)).mean())}
        try:
            values["temporal_consistency"] = temporal_consistency(sim)
        except MetricUndefined as e:
            values["temporal_consistency"] = e
        details = {"frame_indices": indices, "text_cos_per_frame": np.round(cos, 6).tolist(),
                   "frame_similarity": np.round(sim, 5).tolist()}
        return values, details

    def score_many(self, items: list[tuple]):
        """[(uint8 T×H×W×3 array or tensor, prompt)] → [(values, details)].

        The frames of all items are moved to the device video by video (asynchronously from pinned memory)
        and encoded together in shared batches."""
        indices = [self.frame_indices(len(frames)) for frames, _ in items]
        on_device = []
        for (frames, _), idx in zip(items, indices):
            x = torch.as_tensor(frames)
            if len(idx) != len(x):
                x = x[idx]
            on_device.append(x.to(self.device, non_blocking=True))
        feats = self.encode_images(torch.cat(on_device)).double()
        texts = self.encode_texts([p for _, p in items]).double()
        # every video's cosines on the device, then one transfer (no per-video sync, no host BLAS threads)
        parts, start = [], 0
        for idx, text in zip(indices, texts):
            f = feats[start:start + len(idx)]
            parts += [f @ text, (f @ f.T).flatten()]
            start += len(idx)
        flat = torch.cat(parts).cpu().numpy()
        out, start = [], 0
        for idx in indices:
            t = len(idx)
            cos, sim = flat[start:start + t], flat[start + t:start + t + t * t].reshape(t, t)
            out.append(self._values(cos, sim, idx))
            start += t + t * t
        return out

    def score(self, frames: np.ndarray, prompt: str):
        return self.score_many([(frames, prompt)])[0]

