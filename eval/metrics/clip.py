"""CLIP metrics from open_clip or transformers (`hf:`): text alignment (raw cosine, the CLIPScore scale and
torchmetrics' ×100 scale) and temporal consistency (all pairs, consecutive frames, VBench's form).

Frames go in as uint8 and are preprocessed on the device in batches, reproducing the model's own
`preprocess_cfg` (resize mode, interpolation, crop, mean/std); they are divided by 255 exactly once, which is
where float-input pipelines silently feed near-black images. One encoder pass per batch of frames, which
may span several videos; never one frame at a time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from eval.errors import MetricUndefined, UserError, read_json
from eval.metrics.base import Field, Metric, Sample

APPEARANCE = "oracle_appearance"  # the shapes-world field that checks them
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


def text_alignment_x100(cos) -> float:
    """torchmetrics' CLIPScore of the frames against the prompt: max(100 · mean cos, 0). torchmetrics sums
    100·cos over the pairs and clamps the mean, not each pair (its docstring says otherwise)."""
    return max(100.0 * float(np.mean(np.asarray(cos, dtype=np.float64))), 0.0)


def temporal_consistency_consecutive(similarity) -> float:
    """Mean of cos(fₜ, fₜ₊₁) over the T−1 consecutive pairs: the form most video papers report."""
    sim = np.asarray(similarity, dtype=np.float64)
    t = sim.shape[0]
    if t < 2:
        raise MetricUndefined(f"consecutive-frame consistency needs at least 2 frames, got {t}")
    return float(np.diagonal(sim, offset=1).mean())


def temporal_consistency_vbench(similarity) -> float:
    """VBench's subject/background consistency for one video: (1/(T−1)) Σₜ₌₂..T ½(max(0, cos(fₜ, fₜ₋₁)) +
    max(0, cos(fₜ, f₁))), as `video_sim / (len(images) − 1)` in VBench's {subject,background}_consistency.py."""
    sim = np.asarray(similarity, dtype=np.float64)
    t = sim.shape[0]
    if t < 2:
        raise MetricUndefined(f"VBench consistency needs at least 2 frames, got {t}")
    return float((0.5 * (np.maximum(np.diagonal(sim, offset=1), 0) + np.maximum(sim[0, 1:], 0))).mean())


def hub_reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether a download host answers within `timeout` seconds (never when huggingface_hub is set offline).
    Asked only for weights not on this machine, so that offline a missing CLIP fails at once instead of after
    the hub client's retries (about 80 s)."""
    import socket
    import threading

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    answer = []

    def probe():  # in a thread: a name lookup has no timeout of its own
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def offline_hint(what: str, fetch: str = "run once with network access") -> str:
    """The one line for CLIP weights that are neither on this machine nor downloadable now."""
    shipped = Path(__file__).resolve().parents[1] / "shapes" / "weights"
    return (f"CLIP {what} is not on this machine and its download host cannot be reached: {fetch}, or give local "
            "weights: --clip-pretrained FILE (an open_clip checkpoint), --clip-model hf:DIR "
            f"(a transformers CLIP folder), or the shipped shapes CLIP (--clip-model {shipped / 'shapes-clip.json'} "
            f"--clip-pretrained {shipped / 'shapes-clip.safetensors'}); a benchmark manifest names its CLIP in "
            "metrics: clip_model, clip_pretrained")


def _tag_available(model_name: str, tag: str) -> bool:
    """Whether open_clip can load the tagged weights now: they are in its cache, or their host answers."""
    from urllib.parse import urlparse

    import open_clip
    from huggingface_hub import try_to_load_from_cache
    from open_clip import pretrained as oc

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if "file" in cfg:
        return True
    if cfg.get("hf_hub") and oc.has_hf_hub():
        repo, filename = os.path.split(cfg["hf_hub"])
        names = [*oc._get_safe_alternatives(filename or oc.HF_WEIGHTS_NAME), filename or oc.HF_WEIGHTS_NAME]
        if any(isinstance(try_to_load_from_cache(repo, n), str) for n in names):
            return True
        return hub_reachable("huggingface.co")
    url = cfg.get("url", "")
    if (Path("~/.cache/clip").expanduser() / os.path.basename(url)).is_file():
        return True
    return hub_reachable(urlparse(url).hostname or "")


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
        if not _tag_available(model_name, pretrained):
            raise UserError(offline_hint(f"weights '{model_name}/{pretrained}'"))
    try:
        net = open_clip.create_model(model_name, pretrained=arg, precision=precision, device=device)
    except Exception as e:  # hub download and checkpoint errors come in many types
        where = f"checkpoint {pretrained}" if arg and Path(arg).is_file() else f"weights '{model_name}/{pretrained}'"
        raise UserError(f"cannot load CLIP {where}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        " — tagged weights download once on a machine with network access; offline, pass "
                        "--clip-pretrained PATH to a local checkpoint") from None
    net.eval().requires_grad_(False)
    return net, open_clip.get_tokenizer(model_name), model_name, weights


HF_PREFIX = "hf:"
# PIL resampling codes in Hugging Face processor configs → torchvision modes, as transformers' own mapping
HF_RESAMPLE = {0: "nearest-exact", 2: "bilinear", 3: "bicubic"}


def _projected(out) -> torch.Tensor:
    """The projected embeddings from `get_*_features`: a tensor up to transformers 4, an output object holding
    them as `pooler_output` from transformers 5 (where torchmetrics 1.9's CLIPScore breaks)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFClip:
    """A transformers CLIPModel behind open_clip's `encode_image` / `encode_text`, so one batched path serves
    both libraries."""

    def __init__(self, net):
        self.net = net

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return _projected(self.net.get_image_features(pixel_values=pixels))

    def encode_text(self, tokens) -> torch.Tensor:
        return _projected(self.net.get_text_features(input_ids=tokens["input_ids"],
                                                     attention_mask=tokens["attention_mask"]))


def hf_preprocess_cfg(proc, where: str) -> dict:
    """A Hugging Face image processor's settings as a `Preprocess` config; settings it cannot reproduce exactly
    are refused rather than approximated."""
    def refuse(why: str):
        raise UserError(f"{where}: image processor {why}; only resize + center crop + /255 + normalize is supported")

    d = proc.to_dict()  # plain dicts in every transformers version (v5 attributes are SizeDict objects)
    size, crop = d.get("size") or {}, d.get("crop_size") or {}
    do_crop = bool(d.get("do_center_crop"))
    if not d.get("do_resize", True):
        refuse("does not resize")
    if not d.get("do_rescale", True) or abs(d.get("rescale_factor", 1 / 255) * 255 - 1) > 1e-6:
        refuse("does not rescale by 1/255")
    resample = int(d.get("resample", 3))
    if resample not in HF_RESAMPLE:
        refuse(f"uses PIL resample {resample}")
    normalize = d.get("do_normalize", True)
    cfg = {"interpolation": HF_RESAMPLE[resample],
           "mean": tuple(d["image_mean"]) if normalize else (0.0, 0.0, 0.0),
           "std": tuple(d["image_std"]) if normalize else (1.0, 1.0, 1.0)}
    if do_crop and size.get("shortest_edge") and crop.get("height") and crop.get("width"):
        if size["shortest_edge"] < max(crop["height"], crop["width"]):
            refuse(f"crops {crop} beyond its resize {size}")
        return {**cfg, "size": (crop["height"], crop["width"]), "resize_mode": "shortest",
                "shortest_edge": size["shortest_edge"], "crop_offset": "floor"}
    if size.get("height") and size.get("width") and (
            not do_crop or (crop.get("height"), crop.get("width")) == (size["height"], size["width"])):
        return {**cfg, "size": (size["height"], size["width"]), "resize_mode": "squash"}
    refuse(f"has size {size} with crop {crop if do_crop else 'off'}")


def hf_weights(path: Path) -> dict:
    """Weight files of a local Hugging Face model folder (safetensors, which transformers prefers, else .bin)
    and their checksum, so that swapped weights make another spec."""
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not files:
        raise UserError(f"{path}: no model weights (*.safetensors or pytorch_model*.bin) in this folder")
    if len(files) == 1:
        return {"weights": files[0].name, "sha256": file_sha256(files[0])}
    listing = "".join(f"{f.name} {file_sha256(f)}\n" for f in files)
    return {"weights": ", ".join(f.name for f in files), "sha256": hashlib.sha256(listing.encode()).hexdigest()}


class HFSource:
    """Where a `hf:ID_OR_DIR` model comes from: a local `save_pretrained` folder (read offline) or a hub id
    (through the Hugging Face cache), its config, and how its spec names it and its weights."""

    def __init__(self, source: str, option: str):
        from transformers import AutoConfig

        self.where, local = f"hf:{source}", Path(source).expanduser()
        self.offline = local.is_dir()
        if not self.offline and (local.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1
                                 or local.exists()):
            raise UserError(f"{self.where}: no such Hugging Face model folder")
        self.source, self.local = source, local
        self.ref = str(local) if self.offline else source
        download = (f"download it once with network access (huggingface-cli download {source}), or pass {option} "
                    "hf:DIR (a save_pretrained folder)")
        if not self.offline:  # offline, fail at once rather than after the hub client's retries
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(source, "config.json"), str) and not hub_reachable("huggingface.co"):
                raise UserError(offline_hint(f"model '{self.where}'", f"huggingface-cli download {source} once with "
                                             "network access") if option == "--clip-model" else
                                f"{self.where}: not on this machine and its download host cannot be reached: {download}")
        try:
            self.config = AutoConfig.from_pretrained(self.ref, local_files_only=self.offline)
        except Exception as e:  # missing config.json, unknown model type, hub errors (offline: not in the cache)
            hint = "" if self.offline else f" — {download}"
            raise UserError(f"{self.where}: cannot read a Hugging Face model config: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}{hint}") from None

    @property
    def name(self) -> str:
        """A folder is named like an open_clip config (its name, not its place), so that a copied model keeps its
        spec."""
        return f"hf:{self.local.resolve().name}" if self.offline else self.where

    def weights(self) -> dict:
        if self.offline:
            return hf_weights(self.local)
        from huggingface_hub import try_to_load_from_cache  # the snapshot the id resolved to, hashed as a folder

        cached = try_to_load_from_cache(self.source, "config.json")
        return hf_weights(Path(cached).parent) if isinstance(cached, str) else {"weights": self.source}

    def image_processor(self):
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(self.ref, local_files_only=self.offline)


def load_hf_clip(source: str, device: torch.device, dtype: torch.dtype):
    """A transformers CLIPModel, its tokenizer and image processor from a local folder (offline) or a hub id
    (through the Hugging Face cache). Returns (model, tokenizer, model_name, weights_description, preprocess_cfg)."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    src = HFSource(source, "--clip-model")
    where, ref, offline, config = src.where, src.ref, src.offline, src.config
    if not isinstance(config, CLIPConfig):
        raise UserError(f"{where}: not a CLIP model (model_type '{config.model_type}')")
    try:
        net = CLIPModel.from_pretrained(ref, local_files_only=offline, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(ref, local_files_only=offline)
        proc = src.image_processor()
    except Exception as e:  # missing weights, tokenizer or preprocessor files come in many types
        raise UserError(f"{where}: cannot load the CLIP model, tokenizer and image processor: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    net.to(device).eval().requires_grad_(False)
    max_len = config.text_config.max_position_embeddings

    def tokenize(prompts: list[str]):
        return tokenizer(prompts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")

    return HFClip(net), tokenize, src.name, src.weights(), hf_preprocess_cfg(proc, where)


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
        # Hugging Face processors may resize the short side beyond the crop, and floor the crop offset
        self.shortest_edge = cfg.get("shortest_edge")
        self.crop_offset = cfg.get("crop_offset", "round")

    def describe(self) -> str:
        th, tw = self.size
        fit = f"to {self.shortest_edge}" if self.shortest_edge else f"to fit {th}×{tw}"
        crop = f"center crop {th}×{tw}" + (", offset floored" if self.crop_offset == "floor" else "")
        steps = {"shortest": f"resize shortest side {fit} → {crop}",
                 "longest": f"resize longest side to fit {th}×{tw} → center pad (fill {self.fill})",
                 "squash": f"resize to {th}×{tw}"}[self.mode]
        return (f"uint8 RGB → {steps} ({self.interpolation.value}, antialias, rounded to uint8 levels) → /255 → "
                f"normalize mean={self.mean} std={self.std}")

    def _resized_size(self, h: int, w: int) -> tuple[int, int]:
        th, tw = self.size
        if self.mode == "squash":
            return th, tw
        edge = self.shortest_edge or (th if th == tw else None)
        if self.mode == "shortest" and edge:  # torchvision Resize(int): short side = size, long side truncated
            short, long = (h, w) if h <= w else (w, h)
            new_long = int(edge * long / short)
            return (edge, new_long) if h <= w else (new_long, edge)
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
            offset = int if self.crop_offset == "floor" else round
            top, left = int(offset((nh - th) / 2.0)), int(offset((nw - tw) / 2.0))
            x = x[..., top:top + th, left:left + tw]
        elif self.mode == "longest" and (nh, nw) != (th, tw):
            top, left = (th - nh) // 2, (tw - nw) // 2
            x = F.pad(x, (left, tw - nw - left, top, th - nh - top), value=self.fill)
        x = x.div_(255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return ((x - mean) / std).to(dtype)


@torch.inference_mode()
def encode_batched(encode, preprocess: Preprocess, frames, device: torch.device, dtype: torch.dtype,
                   batch_size: int) -> torch.Tensor:
    """uint8 N×H×W×3 (numpy or tensor) → unit-norm float32 N×D: `encode` on `preprocess`ed batches of
    `batch_size` frames on the device (shared by the CLIP and DINO metrics)."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8:
        raise TypeError(f"frames must be uint8, got {x.dtype}")
    out = []
    for i in range(0, x.shape[0], batch_size):
        chunk = x[i:i + batch_size].to(device, non_blocking=True)
        out.append(encode(preprocess(chunk, dtype)).float())
    return F.normalize(torch.cat(out), dim=-1)


class ClipMetric(Metric):
    """Text alignment and temporal consistency of a video against its prompt, in the conventions of `fields`.

    `score_many` packs the frames of all its samples into shared encoder batches of `batch_size`."""

    name = "clip"
    fields = {
        "text_alignment": Field("mean over frames of cos(frame, prompt), raw cosine", range=(-1.0, 1.0),
                                checked_by=APPEARANCE, label="Text alignment"),
        "clip_score": Field("mean over frames of 2.5·max(cos, 0), the CLIPScore scale", range=(0.0, 2.5),
                            checked_by=APPEARANCE, label="CLIPScore", headline=False),
        "temporal_consistency": Field("mean cosine over all pairs of distinct frames", range=(-1.0, 1.0),
                                      checked_by=APPEARANCE, label="Temporal consistency"),
        "text_alignment_x100": Field("max(100 · mean over frames of cos(frame, prompt), 0): torchmetrics' "
                                     "CLIPScore", range=(0.0, 100.0), checked_by=APPEARANCE,
                                     label="CLIPScore (×100)", headline=False),
        "temporal_consistency_consecutive": Field("mean cosine of consecutive frames", range=(-1.0, 1.0),
                                                  checked_by=APPEARANCE, label="Temporal consistency (consecutive)",
                                                  headline=False),
        "temporal_consistency_vbench": Field("VBench's consistency: mean over t ≥ 2 of ½(max(0, cos(fₜ, fₜ₋₁)) + "
                                             "max(0, cos(fₜ, f₁)))", range=(0.0, 1.0), checked_by=APPEARANCE,
                                             label="Temporal consistency (VBench)", headline=False),
    }

    @classmethod
    def add_options(cls, group):
        group.add_argument("--clip-model", default=None,
                           help="open_clip model name, path to a model-config JSON, or hf:ID_OR_DIR for a Hugging "
                                "Face transformers CLIP model (default: the benchmark's, else ViT-B-32)")
        group.add_argument("--clip-pretrained", default=None,
                           help="open_clip pretrained tag or a local checkpoint file (default: the benchmark's, "
                                "else openai; not for hf: models, which bring their weights)")
        group.add_argument("--clip-frames", type=int, default=None,
                           help="score this many uniformly sampled frames per video (default: all)")
        group.add_argument("--clip-dtype", choices=["fp32", "fp16", "bf16"], default=None,
                           help="CLIP compute dtype (default: fp16 on GPU, fp32 on CPU)")
        group.add_argument("--batch-size", type=int, default=256, help="frames per CLIP encoder batch")

    @classmethod
    def from_options(cls, options, defaults: dict, device: str | None) -> "ClipMetric":
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(options.clip_dtype)
        model = options.clip_model or defaults.get("clip_model", "ViT-B-32")
        # an hf: model brings its weights: the benchmark's open_clip weights default does not apply to it
        pretrained = options.clip_pretrained if model.startswith(HF_PREFIX) else (
            options.clip_pretrained or defaults.get("clip_pretrained", "openai"))
        return cls(model=model, pretrained=pretrained, device=device, dtype=dtype, batch_size=options.batch_size,
                   num_frames=options.clip_frames)

    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = "openai", device: str | None = None,
                 dtype: torch.dtype | None = None, batch_size: int = 256, num_frames: int | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or default_dtype(self.device)
        if model.startswith(HF_PREFIX):
            if pretrained is not None:
                raise UserError(f"{model}: a Hugging Face model brings its own weights; give no --clip-pretrained")
            self.model, self.tokenizer, self.model_name, weights, cfg = load_hf_clip(
                model.removeprefix(HF_PREFIX), self.device, self.dtype)
            library = "transformers"
        else:
            self.model, self.tokenizer, self.model_name, weights = load_open_clip(model, pretrained, self.device,
                                                                                  self.dtype)
            cfg, library = dict(self.model.visual.preprocess_cfg), "open_clip"
        self.preprocess = Preprocess(cfg)
        self.batch_size = batch_size
        self.num_frames = num_frames
        self._text_cache: dict[str, torch.Tensor] = {}
        self._spec = {"model": self.model_name, **weights, "preprocessing": self.preprocess.describe(),
                      "frames": f"uniform {num_frames}" if num_frames else "all",
                      "dtype": str(self.dtype).removeprefix("torch."), "library": library}

    def spec(self) -> dict:
        return dict(self._spec)

    def frame_indices(self, total: int) -> list[int]:
        from eval.video import sample_indices

        return sample_indices(total, self.num_frames) if self.num_frames else list(range(total))

    def encode_images(self, frames) -> torch.Tensor:
        """uint8 N×H×W×3 (numpy or tensor) → unit-norm float32 N×D, in batches of `batch_size`."""
        return encode_batched(self.model.encode_image, self.preprocess, frames, self.device, self.dtype,
                              self.batch_size)

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
        values = {"text_alignment": float(cos.mean()), "clip_score": float((2.5 * np.maximum(cos, 0)).mean()),
                  "text_alignment_x100": text_alignment_x100(cos)}
        for name, fn in (("temporal_consistency", temporal_consistency),
                         ("temporal_consistency_consecutive", temporal_consistency_consecutive),
                         ("temporal_consistency_vbench", temporal_consistency_vbench)):
            try:
                values[name] = fn(sim)
            except MetricUndefined as e:
                values[name] = e
        details = {"frame_indices": indices, "text_cos_per_frame": np.round(cos, 6).tolist(),
                   "frame_similarity": np.round(sim, 5).tolist()}
        return values, details

    def score_many(self, samples: list[Sample]):
        """The frames of all samples are moved to the device video by video (asynchronously from pinned
        memory: a sample's frames may be a pinned tensor) and encoded together in shared batches."""
        items = [(s.frames, s.prompt) for s in samples]
        indices = [self.frame_indices(len(frames)) for frames, _ in items]
        on_device = []
        for (frames, _), idx in zip(items, indices):
            x = torch.as_tensor(frames)
            if len(idx) != len(x):
                x = x[idx]
            on_device.append(x.to(self.device, non_blocking=True))
        # frames of one size are encoded together; videos of another size (eval.score on a mixed folder) start a
        # new run of batches, since preprocessing resizes a batch at once
        runs, start = [], 0
        for i in range(1, len(on_device) + 1):
            if i == len(on_device) or on_device[i].shape[1:] != on_device[start].shape[1:]:
                runs.append(self.encode_images(torch.cat(on_device[start:i])))
                start = i
        feats = torch.cat(runs).double()
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

    def score(self, sample: Sample):
        return self.score_many([sample])[0]

