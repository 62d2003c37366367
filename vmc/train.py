"""python -m vmc.train --config CONFIG.yaml --out DIR [--backbone show1|zeroscope|tiny|DIR] [--no-samples]

Adapt VMC to one reference clip and write DIR/adapter.safetensors, DIR/adapter.json, DIR/inverted.safetensors
and, unless --no-samples, DIR/samples/<prompt>__s<seed>.mp4 for every target prompt and seed. CONFIG is
either one case in the benchmark format (id, reference, train_prompt, target_prompts, frames, fps; optional
`backbone`, `seeds` and `train` overrides) or an official VMC config, unchanged (pretrained_t2v_path,
train_dataset{path, prompt, n_sample_frame, sampling_rate, stride}, train_steps, lr, seed, num_inv_steps,
validation_sample_logger{prompts, num_inference_steps, guidance_scale, height, width, sample_seeds}), whose
pretrained_t2v_path may be the hub id or a local copy of show-1-base (its other stages then come from sibling
folders named like their hub repos, or else from the hub; the line `backbone: …` on stderr says which).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from eval.errors import UserError, cli_main

HUB_BASE = "showlab/show-1-base"


def _resolve_path(value: str, config_path: Path) -> Path:
    p = Path(value)
    if p.is_absolute():
        return p
    beside = config_path.parent / p
    return beside if beside.exists() else Path.cwd() / p


def load_train_config(path: Path) -> dict:
    """→ {case fields, backbone, seeds, train overrides, settings overrides} from either config format."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not path.is_file():
        raise UserError(f"{path}: no such config")
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OmegaConfBaseException, ValueError) as e:
        raise UserError(f"{path}: not a valid config ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config is a mapping")
    if "train_dataset" in raw:
        return _from_official(raw, path)
    missing = [k for k in ("reference", "train_prompt", "target_prompts") if k not in raw]
    if missing:
        raise UserError(f"{path}: neither an official VMC config (no train_dataset) nor a case "
                        f"(missing {', '.join(missing)})")
    return {"case": {k: raw[k] for k in ("id", "reference", "train_prompt", "target_prompts", "frames", "fps")
                     if k in raw}, "backbone": raw.get("backbone"), "seeds": raw.get("seeds", [0]),
            "train": raw.get("train", {}), "settings": raw.get("settings", {}), "sampling_rate": 1}


def _from_official(raw: dict, path: Path) -> dict:
    data = raw["train_dataset"]
    for key in ("path", "prompt"):
        if key not in data:
            raise UserError(f"{path}: train_dataset.{key} is missing")
    val = raw.get("validation_sample_logger") or {}
    base = raw.get("pretrained_t2v_path", HUB_BASE)
    train = {k: v for k, v in {"steps": raw.get("train_steps"), "lr": raw.get("lr"),
                               "seed": raw.get("seed")}.items() if v is not None}
    if raw.get("num_inv_steps") is not None:
        train["inversion_steps"] = int(raw["num_inv_steps"])
    settings = {k: v for k, v in {"keyframe_steps": val.get("num_inference_steps"),
                                  "keyframe_guidance": val.get("guidance_scale"), "height": val.get("height"),
                                  "width": val.get("width")}.items() if v is not None}
    if "keyframe_guidance" in settings:  # the official samples start from the inversion: the same guidance there
        settings["inverted_keyframe_guidance"] = settings["keyframe_guidance"]
    return {"case": {"id": str(raw.get("vid_name", path.stem)), "reference": data["path"],
                     "train_prompt": data["prompt"], "target_prompts": val.get("prompts") or [data["prompt"]],
                     "frames": data.get("n_sample_frame", 8)},
            "backbone": "show1" if base == HUB_BASE else base, "seeds": val.get("sample_seeds", [0]),
            "train": train, "settings": settings, "sampling_rate": int(data.get("sampling_rate", 1))}


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.train", description=__doc__.split("\n\n")[1])
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backbone", default=None, help="overrides the config's (show1, zeroscope, modelscope, tiny, "
                   "tiny-zeroscope, a cascade directory, a copy of show-1-base or a diffusers text-to-video folder)")
    p.add_argument("--device", default=None)
    p.add_argument("--no-samples", action="store_true", help="only train and invert")
    p.add_argument("--inversion-schedule", choices=["base", "sd15"], default="base",
                   help="DDIM inversion schedule: the backbone's own (default) or Stable Diffusion 1.5's, as the "
                        "official code uses")
    args = p.parse_args(argv)
    cfg = load_train_config(args.config)
    reference = _resolve_path(str(cfg["case"]["reference"]), args.config)
    if not reference.exists():
        raise UserError(f"{args.config}: reference clip {reference} not found")
    if cfg["sampling_rate"] != 1:
        from eval.video import Video, read_video, write_video

        clip = read_video(reference)
        reference = write_video(Path(tempfile.mkdtemp()) / "clip.mp4",
                                Video(clip.frames[::cfg["sampling_rate"]], clip.fps / cfg["sampling_rate"]))
    from eval.cli_common import method_options
    from eval.manifest import Case
    from vmc.method import VMCMethod

    case = Case(id=cfg["case"].get("id", args.config.stem), reference=reference,
                train_prompt=cfg["case"]["train_prompt"], target_prompts=tuple(cfg["case"]["target_prompts"]),
                frames=cfg["case"].get("frames"), fps=cfg["case"].get("fps"))
    method = VMCMethod(args.backbone or cfg["backbone"], device=args.device, **method_options())
    try:
        method.backbone.settings = dataclasses.replace(method.backbone.settings, **cfg["settings"])
    except TypeError as e:
        raise UserError(f"{args.config}: {e}") from None
    try:
        method.configure({**cfg["train"], "inversion_schedule": args.inversion_schedule})
    except UserError as e:
        raise UserError(f"{args.config}: {e}") from None
    state = method.adapt_into(args.out, case)
    print(f"adapter written to {args.out}")
    if args.no_samples:
        return
    from eval.naming import video_name
    from eval.video import write_video

    for prompt in case.target_prompts:
        for seed in cfg["seeds"]:
            path = write_video(args.out / "samples" / video_name(prompt, seed),
                               method.generate(state, prompt, int(seed)))
            print(f"{prompt!r} seed {seed} → {path}")


if __name__ == "__main__":
    main()
