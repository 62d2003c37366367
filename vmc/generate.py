"""python -m vmc.generate [--backbone show1|zeroscope|tiny|DIR | --adapter DIR] --prompt "…" [--stages …] --seed S --out x.mp4

Text-to-video with the Show-1 cascade (every stage's official defaults) or a latent video backbone (ZeroScope,
ModelScope: one stage, `video`). With --adapter (a folder written by
vmc.train or eval.run) the method that made it, which adapter.json names, rebuilds its adapted keyframe UNet,
and sampling starts where that method starts (for vmc, the reference clip's DDIM inversion): the reference
motion in the prompt's appearance. --save-stages also writes each intermediate stage as x.<stage>.mp4.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from eval.cli_common import method_options
from eval.errors import UserError, cli_main
from vmc.backbones import KINDS
from vmc.backbones.base import FIRST_KIND
from vmc.backbones.show1 import STAGES


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m vmc.generate", description=__doc__.split("\n\n")[1])
    p.add_argument("--backbone", default=None, help="shapes, show1, tiny, zeroscope, modelscope, tiny-zeroscope, a "
                   "cascade directory, a copy of show-1-base or a diffusers text-to-video folder (default: the "
                   "adapter's, else show1)")
    p.add_argument("--adapter", type=Path, default=None, help="an adapter folder of a tuning method "
                   "(adapter.json, adapter.safetensors and, for an inverted start, inverted.safetensors)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--stages", default=None, help=f"comma-separated from {','.join(STAGES)} (a latent backbone: "
                   "video), up to the last one wanted (default: every stage the backbone has)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output .mp4")
    p.add_argument("--save-stages", action="store_true", help="also write every intermediate stage")
    p.add_argument("--device", default=None)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a cascade setting, e.g. --set keyframe_steps=25 (repeatable)")
    return p.parse_args(argv)


def apply_overrides(settings, pairs: list[str]):
    fields = {f.name: f.type for f in dataclasses.fields(settings)}
    changes = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in fields or not value:
            raise UserError(f"--set {pair}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        kind = float if getattr(settings, key) is None else type(getattr(settings, key))  # None: an optional float
        try:
            changes[key] = kind(value)
        except ValueError:
            raise UserError(f"--set {pair}: {key} takes a {kind.__name__}") from None
    return dataclasses.replace(settings, **changes)


def adapter_method(folder: Path, backbone: str | None, device: str | None):
    """The method that made the adapter in `folder` (adapter.json names it), on `backbone` (default: the
    adapter's): its family rebuilds the adapted UNet."""
    from eval.methods import create_method
    from vmc.adapter import read_adapter_info
    from vmc.families.tuning import TuningMethod

    info = read_adapter_info(folder)
    method = create_method(f"{info.get('method', '?')}:{backbone or info.get('backbone', 'show1')}", device,
                           method_options())
    if not isinstance(method, TuningMethod):
        raise UserError(f"{folder}: made by {method.name}, which does not tune the UNet")
    made_on = info.get("backbone_kind", FIRST_KIND)
    if made_on != method.backbone.kind:
        described = KINDS.get(made_on).description if made_on in KINDS else made_on
        raise UserError(f"{folder}: an adapter made on {described} ({info.get('backbone')}); "
                        f"{method.backbone.name} is {method.backbone.pipeline_class.description}")
    if info.get("backbone_layout", "") != method.backbone.layout:  # the DiT kind: Wan or CogVideoX
        raise UserError(f"{folder}: an adapter made on a {info.get('backbone_layout')}-layout transformer "
                        f"({info.get('backbone')}); {method.backbone.name} is {method.backbone.layout}-layout")
    trained_on = info.get("base", {}).get("id")
    if trained_on and trained_on != method.backbone.base.path:  # the same layout (checked on loading), other weights
        print(f"note: {folder} was trained on {trained_on}; generating with {method.backbone.base.path}",
              file=sys.stderr)
    return method


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if args.out.suffix.lower() != ".mp4":
        raise UserError(f"{args.out}: the output must be an .mp4 file")
    import torch

    from eval.video import Video, write_video
    from vmc.backbones import resolve_backbone, to_uint8

    if args.adapter is None:
        backbone = resolve_backbone(args.backbone or "show1", cache=method_options()["cache"])
        backbone.settings = apply_overrides(backbone.settings, args.set)
        cascade, start = backbone.pipeline(args.device or ("cuda" if torch.cuda.is_available() else "cpu")), {}
    else:
        method = adapter_method(args.adapter, args.backbone, args.device)
        method.backbone.settings = apply_overrides(method.backbone.settings, args.set)
        state = method.reload(args.adapter)
        cascade = method.cascade
        start = {"init_latents": method.start_latents(state, args.seed), "keyframe_unet": state["unet"]}
    known = cascade.known_stages
    stages = [s.strip() for s in (args.stages or ",".join(cascade.backbone.stages)).split(",") if s.strip()]
    if not stages or set(stages) - set(known):
        raise UserError(f"--stages {args.stages}: the stages of {cascade.backbone.name} are {', '.join(known)}")
    outputs = cascade.run(args.prompt, args.seed, stages, **start)
    last = list(outputs)[-1]
    for stage, video in outputs.items():
        if stage == last or args.save_stages:
            path = args.out if stage == last else args.out.with_name(f"{args.out.stem}.{stage}.mp4")
            write_video(path, Video(to_uint8(video[0]), cascade.fps(stage)))
            print(f"{stage}: {tuple(video.shape[2:])} → {path}")


if __name__ == "__main__":
    main()
