"""Backbone profiles: `shapes` (the shapes-world cascade shipped inside the package: keyframes, interpolation,
SR1; the offline default), `show1` (the published models on the Hugging Face hub), `tiny` (a random tiny
cascade written once to the user cache; no download), any local directory laid out like the hub repos, or a
local copy of show-1-base itself (what users set an official VMC config's pretrained_t2v_path to), whose other
stages come from its sibling folders or, where those are absent, from the hub.

Latent video backbones (one stage, vmc.pipelines.latent_video): `zeroscope` (cerspense/zeroscope_v2_576w: 24
frames at 576×320), `modelscope` (damo-vilab/text-to-video-ms-1.7b: 16 frames at 256×256), `tiny-zeroscope` (a
random tiny model of ZeroScope's layout written once to the user cache), or any local folder in diffusers'
`TextToVideoSDPipeline` layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), whose
optional cascade.json sets LatentVideoSettings fields under "settings" and method settings under their names.

Video diffusion transformers (one stage, vmc.pipelines.dit): `wan2.1-1.3b` (Wan-AI/Wan2.1-T2V-1.3B-Diffusers),
`cogvideox-2b` (THUDM/CogVideoX-2b), `tiny-wan` / `tiny-cogvideox` (random tiny models written once to the user
cache by vmc.tools.make_tiny_dit), `wan2.1-random` / `cogvideox-random` (the same tool at the published sizes,
for timing on a GPU), or any folder whose model_index.json names WanPipeline or CogVideoXPipeline; its optional
cascade.json sets DiTSettings fields under "settings" and method settings under their names, over the kind's
own (DIT_METHODS).

The hub revisions are left at `main` (the stored hub pages this project was built from give no full commit
ids); to pin exact files, download the repos once and pass their directory. Note that show-1-base's scheduler config changed between revisions
(variance_type learned_range → fixed_small); DPM-Solver sampling reads only the first three UNet output
channels either way, so sampling is unaffected.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from eval.errors import UserError, read_json
from vmc.pipelines.cascade import LOCAL_DIRS, Backbone, Source

SHOW1 = dict(base=Source("showlab/show-1-base", variant="fp16"),
             interpolation=Source("showlab/show-1-interpolation", variant="fp16"),
             sr1=Source("showlab/show-1-sr1"), if_sr=Source("DeepFloyd/IF-II-L-v1.0", variant="fp16"),
             sr2=Source("showlab/show-1-sr2"))
LATENT = {"zeroscope": (Source("cerspense/zeroscope_v2_576w"), {}),
          "modelscope": (Source("damo-vilab/text-to-video-ms-1.7b", variant="fp16"),
                         {"num_frames": 16, "height": 256, "width": 256})}
# the DiT kind (vmc.pipelines.dit): published defaults per layout, hub profiles, tiny / random-weight profiles
DIT_DEFAULTS = {"wan": {},  # DiTSettings' defaults are Wan 2.1's; the flow shift is its scheduler's (3.0)
                "cogvideox": {"num_frames": 49, "height": 480, "width": 720, "keyframe_guidance": 6.0, "fps": 8.0,
                              "text_length": 226}}
DIT = {"wan2.1-1.3b": (Source("Wan-AI/Wan2.1-T2V-1.3B-Diffusers"), "wan"),
       "cogvideox-2b": (Source("THUDM/CogVideoX-2b"), "cogvideox")}
DIT_MADE = {"tiny-wan": ("wan", "tiny"), "tiny-cogvideox": ("cogvideox", "tiny"),
            "wan2.1-random": ("wan", "official"), "cogvideox-random": ("cogvideox", "official")}
DIT_PIPELINES = {"WanPipeline": "wan", "CogVideoXPipeline": "cogvideox"}  # model_index.json's _class_name
PROFILES = ("shapes", "show1", "tiny", *LATENT, "tiny-zeroscope", *DIT, *DIT_MADE)
SHAPES_DIR = Path(__file__).resolve().parent / "shapes" / "weights"
STAGE_NAMES = {"base": "keyframes", "interpolation": "interpolation", "sr1": "sr1", "if_sr": "IF-II-L", "sr2": "sr2"}
KEYFRAME_PARTS = ("unet/config.json", "scheduler/", "text_encoder/", "tokenizer/")  # what the keyframe stage loads


def tiny_dir(name: str = "tiny-cascade") -> Path:
    return Path(os.environ.get("VMC_CACHE", Path.home() / ".cache" / "vmc-suite")) / name


def latent_backbone(source: Source, name: str, meta: dict, where: str) -> Backbone:
    """A ModelScope-layout backbone with the settings of `meta` (a cascade.json's content) over the defaults."""
    from vmc.pipelines.latent_video import LatentVideoSettings

    try:
        settings = LatentVideoSettings(**meta.get("settings", {}))
    except TypeError as e:
        raise UserError(f"{where}: {e}") from None
    return Backbone(source, name=meta.get("name", name), settings=settings, kind="latent",
                    adaptation={k: v for k, v in meta.items() if isinstance(v, dict) and k not in ("settings", "training")})


def dit_methods(layout: str, num_layers: int) -> dict:
    """The kind's own method settings (a folder's cascade.json entries go over them): vmc adapts the blocks'
    self-attention q/k/v (rule self_qkv), dmt reads the output of the middle block and ditflow the attention of the
    middle block (DiTFlow's choice: block 15 of CogVideoX-2B's 30)."""
    blocks = "blocks" if layout == "wan" else "transformer_blocks"
    return {"vmc": {"rule": "self_qkv"}, "dmt": {"features": [f"transformer.{blocks}.{num_layers // 2}"]},
            "ditflow": {"block": num_layers // 2}}


def dit_backbone(source: Source, layout: str, name: str, meta: dict, where: str, num_layers: int = 30) -> Backbone:
    """A Wan / CogVideoX backbone with the settings of `meta` (a cascade.json's content) over the layout's."""
    from vmc.pipelines.dit import DiTSettings

    try:
        settings = DiTSettings(**{**DIT_DEFAULTS[layout], **meta.get("settings", {})})
    except TypeError as e:
        raise UserError(f"{where}: {e}") from None
    if (settings.num_frames - 1) % 4:
        raise UserError(f"{where}: num_frames {settings.num_frames}: a {layout} backbone takes 1 + 4k frames "
                        "(its VAE compresses time 4×)")
    methods = dit_methods(layout, num_layers)
    for key, value in meta.items():
        if isinstance(value, dict) and key not in ("settings", "training"):
            methods[key] = {**methods.get(key, {}), **value}
    return Backbone(source, name=meta.get("name", name), settings=settings, kind="dit", layout=layout,
                    adaptation=methods)


def dit_from_dir(root: Path, layout: str) -> Backbone:
    path = root / "cascade.json"
    meta = read_json(path) if path.is_file() else {}
    try:
        num_layers = json.loads((root / "transformer" / "config.json").read_text())["num_layers"]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{root}: unreadable transformer/config.json ({e})") from None
    return dit_backbone(Source(str(root)), layout, root.name, meta, str(path), num_layers)


def dit_layout(folder: Path) -> str | None:
    """'wan' or 'cogvideox' for a folder whose model_index.json names WanPipeline or CogVideoXPipeline."""
    try:
        return DIT_PIPELINES.get(json.loads((folder / "model_index.json").read_text()).get("_class_name"))
    except (OSError, ValueError, AttributeError):
        return None


def is_latent_video_dir(folder: Path) -> bool:
    """A folder in diffusers' TextToVideoSDPipeline layout: a model index naming a VAE and a UNet3DConditionModel."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return False
    return "vae" in index and list(index.get("unet", []))[-1:] == ["UNet3DConditionModel"]


def resolve_backbone(spec: str, note=lambda msg: print(msg, file=sys.stderr)) -> Backbone:
    """The backbone `spec` names; `note` receives the line saying where each stage comes from when they come
    from several places (a copy of show-1-base)."""
    if spec == "show1":
        return Backbone(**SHOW1, name="show1")
    if spec in LATENT:
        source, settings = LATENT[spec]
        return latent_backbone(source, spec, {"settings": settings}, spec)
    if spec in DIT:
        source, layout = DIT[spec]
        return dit_backbone(source, layout, spec, {}, spec)
    if spec in DIT_MADE:
        root = tiny_dir(spec)
        if not (root / "cascade.json").is_file():
            from vmc.tools.make_tiny_dit import make

            layout, size = DIT_MADE[spec]
            make(root, layout, size=size)
        return dit_from_dir(root, DIT_MADE[spec][0])
    if spec == "tiny-zeroscope":
        root = tiny_dir(spec)
        if not (root / "model_index.json").is_file():
            from vmc.tools.make_tiny_zeroscope import make

            make(root)
        return latent_from_dir(root)
    if spec == "tiny":
        root = tiny_dir()
        if not (root / "cascade.json").is_file():
            from vmc.tools.make_tiny_cascade import make

            make(root)
        return Backbone.from_dir(root)
    if Path(spec).is_dir():
        root = Path(spec)
        if is_latent_video_dir(root):
            return latent_from_dir(root)
        if dit_layout(root):
            return dit_from_dir(root, dit_layout(root))
        if (root / LOCAL_DIRS["base"]).is_dir():
            return Backbone.from_dir(root)
        problem = keyframe_stage_problem(root)
        if problem:
            raise UserError(f"{root}: neither a cascade directory (no {LOCAL_DIRS['base']}/ inside) nor a copy of "
                            f"{LOCAL_DIRS['base']} ({problem})")
        backbone = around_keyframe_stage(root)
        note(sources_line(backbone))
        return backbone
    if spec == "shapes":
        if not (SHAPES_DIR / "cascade.json").is_file():
            raise UserError(f"{SHAPES_DIR}: the shapes-world weights are missing from this installation; "
                            "retrain them with python -m vmc.shapes.train --export " + str(SHAPES_DIR))
        return Backbone.from_dir(SHAPES_DIR)
    raise UserError(f"unknown backbone '{spec}': use {', '.join(PROFILES)}, a cascade directory, a copy of "
                    f"{LOCAL_DIRS['base']} or a folder in diffusers' TextToVideoSDPipeline, WanPipeline or "
                    "CogVideoXPipeline layout")


def latent_from_dir(root: Path) -> Backbone:
    path = root / "cascade.json"
    meta = read_json(path) if path.is_file() else {}
    return latent_backbone(Source(str(root)), root.name, meta, str(path))


def keyframe_stage_problem(folder: Path) -> str | None:
    """Why `folder` is not a copy of show-1-base, judged by its content rather than its name (None when it is):
    the parts the keyframe stage loads, and a UNet over pixels (3 input channels; interpolation's takes 7, SR1's
    6, SR2's 4), so that a copy of another stage is not taken for it."""
    missing = [part for part in KEYFRAME_PARTS if not (folder / part).exists()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        channels = json.loads((folder / "unet" / "config.json").read_text()).get("in_channels")
    except (OSError, ValueError) as e:
        return f"unreadable unet/config.json: {e}"
    if channels != 3:
        return f"its UNet takes {channels} input channels, not 3: another stage's folder?"
    return None


def around_keyframe_stage(folder: Path) -> Backbone:
    """`folder` (a copy of show-1-base) as the keyframe stage; every other stage from the sibling folder named
    like its hub repo when there is one, else from the hub as `show1` loads it. The settings are the official
    ones (a cascade directory's cascade.json applies when the directory itself is the backbone)."""
    others = {k: Source(str(folder.parent / d)) if (folder.parent / d).is_dir() else SHOW1[k]
              for k, d in LOCAL_DIRS.items() if k != "base"}
    return Backbone(Source(str(folder)), **others, name=folder.name, assembled=True)


def sources(backbone: Backbone) -> dict[str, str]:
    """Where each model folder of `backbone` comes from: a local directory, or a hub id at its revision."""
    return {k: s.path if Path(s.path).is_dir() else f"{s.path}@{s.revision or 'main'}"
            for k in LOCAL_DIRS if (s := getattr(backbone, k)) is not None}


def sources_line(backbone: Backbone) -> str:
    """e.g. `backbone: keyframes from /x/show-1-base; interpolation from /x/show-1-interpolation; sr1, IF-II-L,
    sr2 from the hub (showlab/show-1-sr1@main, DeepFloyd/IF-II-L-v1.0@main, showlab/show-1-sr2@main)`."""
    where = sources(backbone)
    hub = [k for k in where if not Path(getattr(backbone, k).path).is_dir()]
    parts = [f"{STAGE_NAMES[k]} from {where[k]}" for k in where if k not in hub]
    if hub:
        parts.append(f"{', '.join(STAGE_NAMES[k] for k in hub)} from the hub ({', '.join(where[k] for k in hub)})")
    return "backbone: " + "; ".join(parts)
