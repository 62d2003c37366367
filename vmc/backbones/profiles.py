"""From a backbone's name on the command line to a Backbone: a profile (profiles.json: hub ids and published
defaults, the shapes weights shipped in the package, the tiny random models a command makes) or a local model
folder, whose kind is recognised by its model_index.json's `_class_name`, as diffusers recognises a pipeline.

Resolving a name never writes anything: a tiny profile that is not made yet is one line naming the command that
makes it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eval.errors import UserError, read_json
from vmc.backbones.base import KINDS, Backbone, Source

HERE = Path(__file__).resolve().parent
PROFILES = {k: v for k, v in json.loads((HERE / "profiles.json").read_text()).items() if not k.startswith("_")}
SHAPES_DIR = (HERE / PROFILES["shapes"]["folder"]).resolve()
DEFAULT_CACHE = Path.home() / ".cache" / "vmc-suite"  # the user cache where a command line names none


def tiny_dir(name: str = "tiny-cascade", cache: Path | None = None) -> Path:
    """A folder of the user cache: `cache`, which a command line reads from $VMC_CACHE, else DEFAULT_CACHE."""
    return Path(cache or DEFAULT_CACHE) / name


def hub_sources(profile: str) -> dict[str, Source]:
    """The model folders of a hub profile, by Backbone field."""
    return {k: Source(**v) for k, v in PROFILES[profile]["sources"].items()}


def resolve_backbone(spec: str, note=lambda msg: print(msg, file=sys.stderr), cache: Path | None = None
                     ) -> Backbone:
    """The backbone `spec` names; `note` receives the line saying where each stage comes from when they come
    from several places (a copy of show-1-base); `cache` is the user cache that holds the tiny models."""
    profile = PROFILES.get(spec, {})
    if "sources" in profile:
        kind = KINDS.get(profile["kind"])
        return kind.from_profile(spec, hub_sources(spec), profile)
    if "cache" in profile:
        folder = tiny_dir(profile["cache"], cache)
        if not folder.is_dir():
            raise UserError(f"backbone '{spec}' is not made yet: {profile['made_by']} {folder} makes it")
        return from_folder(folder, note)
    if Path(spec).is_dir():
        return from_folder(Path(spec), note)
    if "folder" in profile:
        if not (SHAPES_DIR / "cascade.json").is_file():
            raise UserError(f"{SHAPES_DIR}: {profile['missing'].format(folder=SHAPES_DIR)}")
        return from_folder(SHAPES_DIR, note)
    raise UserError(f"unknown backbone '{spec}': use {', '.join(PROFILES)} or a model folder, {accepted_layouts()}")


def from_folder(root: Path, note) -> Backbone:
    """The backbone in a local folder, of the kind whose model_index.json class it names; a folder without a
    model index (a Show-1 cascade directory) is read by the kinds that take such folders."""
    kinds = KINDS.load_all()
    index = root / "model_index.json"
    if index.is_file():
        name = read_json(index).get("_class_name")
        for kind in kinds.values():
            if name in kind.model_index_classes:
                return kind.from_dir(root, note)
        raise UserError(f"{index}: a {name} folder, which no backbone kind loads; {accepted_layouts()}")
    problems = []
    for kind in kinds.values():
        if kind.reads_unindexed_folders:
            try:
                return kind.from_dir(root, note)
            except UserError as e:
                problems.append(str(e))
    raise UserError("; ".join(problems) or f"{root}: no model_index.json; {accepted_layouts()}")


def accepted_layouts() -> str:
    """The model folders every registered kind loads, in one phrase for error messages."""
    return "accepted: " + "; ".join(f"{name}: {kind.layout}" for name, kind in KINDS.load_all().items())
