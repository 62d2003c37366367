"""Backbone profiles: `shapes` (the shapes-world cascade shipped inside the package: keyframes, interpolation,
SR1; the offline default), `show1` (the published models on the Hugging Face hub), `tiny` (a random tiny
cascade written once to the user cache; no download), or any local directory laid out like the hub repos.

The hub revisions are left at `main` (the stored hub pages this project was built from give no full commit
ids); to pin exact files, download the repos once and pass their directory. Note that show-1-base's scheduler config changed between revisions
(variance_type learned_range → fixed_small); DPM-Solver sampling reads only the first three UNet output
channels either way, so sampling is unaffected.
"""

from __future__ import annotations

import os
from pathlib import Path

from eval.errors import UserError
from vmc.pipelines.cascade import Backbone, Source

SHOW1 = dict(base=Source("showlab/show-1-base", variant="fp16"),
             interpolation=Source("showlab/show-1-interpolation", variant="fp16"),
             sr1=Source("showlab/show-1-sr1"), if_sr=Source("DeepFloyd/IF-II-L-v1.0", variant="fp16"),
             sr2=Source("showlab/show-1-sr2"))
PROFILES = ("shapes", "show1", "tiny")
SHAPES_DIR = Path(__file__).resolve().parent / "shapes" / "weights"


def tiny_dir() -> Path:
    return Path(os.environ.get("VMC_CACHE", Path.home() / ".cache" / "vmc-suite")) / "tiny-cascade"


def resolve_backbone(spec: str) -> Backbone:
    if spec == "show1":
        return Backbone(**SHOW1, name="show1")
    if spec == "tiny":
        root = tiny_dir()
        if not (root / "cascade.json").is_file():
            from vmc.tools.make_tiny_cascade import make

            make(root)
        return Backbone.from_dir(root)
    if Path(spec).is_dir():
        return Backbone.from_dir(spec)
    if spec == "shapes":
        if not (SHAPES_DIR / "cascade.json").is_file():
            raise UserError(f"{SHAPES_DIR}: the shapes-world weights are missing from this installation; "
                            "retrain them with python -m vmc.shapes.train --export " + str(SHAPES_DIR))
        return Backbone.from_dir(SHAPES_DIR)
    raise UserError(f"unknown backbone '{spec}': use {', '.join(PROFILES)} or a cascade directory")
