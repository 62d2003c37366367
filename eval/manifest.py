"""Benchmark manifests: YAML files listing cases (reference clip, appearance-invariant training prompt, targets).

A manifest is either a list of cases or a mapping with `cases:` and optional `name`, `description`, `source`,
`root` (where reference paths are resolved, relative to the manifest; default its own folder), `defaults`
(`frames`, `fps`, `size` for every case) and `metrics` (`clip_model`, `clip_pretrained`: the benchmark's default
CLIP; `oracle: shapes` adds the shapes-world oracle metrics, which read a case's `meta.reference_prompt`;
`dino_model` the default of `--dino-model`; `mtbench: true` adds MTBench's metrics, `tracks_mtbench` and `dino`).
Every error names the file, the case and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from eval.errors import ManifestError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
CASE_FIELDS = {"id", "reference", "train_prompt", "target_prompts", "frames", "fps", "size", "optional", "meta",
               "mask"}
TOP_FIELDS = {"name", "description", "source", "root", "defaults", "metrics", "cases"}
METRICS_FIELDS = {"clip_model", "clip_pretrained", "oracle", "dino_model", "mtbench"}
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Case:
    id: str
    reference: Path
    train_prompt: str
    target_prompts: tuple[str, ...]
    frames: int | None = None
    fps: float | None = None
    optional: bool = False
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    mask: Path | None = None  # a foreground mask of the reference's first frame (an image; MTBench's tracks use it)
    # [height, width] that videos made elsewhere are brought to (eval.protocol); None: the reference clip's
    size: tuple[int, int] | None = None

    def load_reference(self):
        from eval.video import read_video

        return read_video(self.reference, num_frames=self.frames, fps=self.fps)

    def load_mask(self):
        """The reference's first-frame mask as a bool H×W array (any nonzero pixel is foreground), or None."""
        if self.mask is None:
            return None
        import numpy as np
        from PIL import Image

        from eval.errors import UserError

        try:
            with Image.open(self.mask) as im:
                return np.asarray(im.convert("L")) > 0
        except (OSError, ValueError) as e:
            raise UserError(f"{self.mask}: case '{self.id}': cannot read its mask image ({e})") from None

    def fingerprint(self) -> str:
        """Hash of everything that defines the case, reference content included (for caching adaptations)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.id, self.train_prompt, list(self.target_prompts), self.frames, self.fps]).encode())
        files = sorted(p for p in self.reference.rglob("*") if p.is_file()) if self.reference.is_dir() \
            else [self.reference]
        for p in files:
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()[:16]


@dataclass
class Benchmark:
    name: str
    path: Path
    cases: list[Case]
    description: str = ""
    metrics: dict = field(default_factory=dict)

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise ManifestError(f"{self.path}: no case '{case_id}' (cases: {', '.join(c.id for c in self.cases)})")


def builtin_benchmarks() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve_benchmark_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ManifestError(f"{p}: no such benchmark manifest")
        return p
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise ManifestError(f"unknown benchmark '{name_or_path}': not a manifest file, and the built-in "
                        f"benchmarks are: {', '.join(builtin_benchmarks()) or 'none'}")


def _fail(path, where, msg):
    raise ManifestError(f"{path}: {where}{msg}")


def _check_prompt(path, where, name, value):
    if not isinstance(value, str) or not value.strip():
        _fail(path, where, f"field '{name}' must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_case(path: Path, root: Path, i: int, raw, defaults: dict) -> Case:
    where = f"case #{i + 1}: "
    if not isinstance(raw, dict):
        _fail(path, where, f"must be a mapping with fields {sorted(CASE_FIELDS)}, got {type(raw).__name__}")
    cid = raw.get("id")
    if not isinstance(cid, str) or not ID_RE.match(cid):
        _fail(path, where, f"field 'id' must be a name of letters, digits, '_', '.', '-', got {cid!r}")
    where = f"case '{cid}': "
    unknown = sorted(set(raw) - CASE_FIELDS)
    if unknown:
        _fail(path, where, f"unknown field(s) {unknown}; allowed: {sorted(CASE_FIELDS)} (free-form data goes in 'meta')")
    for required in ("reference", "train_prompt", "target_prompts"):
        if required not in raw:
            _fail(path, where, f"field '{required}' is missing")
    ref = raw["reference"]
    if not isinstance(ref, str) or not ref.strip():
        _fail(path, where, f"field 'reference' must be a path (video file or folder of frames), got {ref!r}")
    targets = raw["target_prompts"]
    if not isinstance(targets, list) or not targets:
        _fail(path, where, f"field 'target_prompts' must be a non-empty list of strings, got {targets!r}")
    targets = tuple(_check_prompt(path, where, f"target_prompts[{j}]", t) for j, t in enumerate(targets))
    if len(set(targets)) != len(targets):
        _fail(path, where, "field 'target_prompts' lists a prompt twice")
    merged = {**defaults, **{k: v for k, v in raw.items() if k in ("frames", "fps", "size")}}
    frames, fps, size = merged.get("frames"), merged.get("fps"), merged.get("size")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 2):
        _fail(path, where, f"field 'frames' must be an integer ≥ 2, got {frames!r}")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0):
        _fail(path, where, f"field 'fps' must be a positive number, got {fps!r}")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        _fail(path, where, f"field 'size' must be [height, width] in pixels, got {size!r}")
    meta = raw.get("meta", {})
    if not isinstance(meta, dict):
        _fail(path, where, f"field 'meta' must be a mapping, got {type(meta).__name__}")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        _fail(path, where, f"field 'optional' must be true or false, got {optional!r}")
    mask = raw.get("mask")
    if mask is not None and (not isinstance(mask, str) or not mask.strip()):
        _fail(path, where, f"field 'mask' must be the path of an image, got {mask!r}")
    return Case(id=cid, reference=(root / ref).resolve(), train_prompt=_check_prompt(path, where, "train_prompt",
                raw["train_prompt"]), target_prompts=targets, frames=frames,
                fps=float(fps) if fps is not None else None, optional=optional, meta=meta,
                size=tuple(size) if size is not None else None,
                mask=(root / mask).resolve() if mask else None)


def load_benchmark(name_or_path: str | Path, data_root: str | Path | None = None, check_files: bool = True,
                   warn=lambda msg: print(msg, file=sys.stderr)) -> Benchmark:
    """Load and validate a manifest (a built-in name or a YAML path).

    data_root overrides the manifest's `root`. With check_files, missing reference clips are an error that
    lists them all; missing clips of cases marked `optional` are skipped with a warning instead."""
    path = resolve_benchmark_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark else ""
        raise ManifestError(f"{path}: {at}not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if isinstance(raw, list):
        raw = {"cases": raw}
    if not isinstance(raw, dict) or "cases" not in raw:
        raise ManifestError(f"{path}: a manifest is a list of cases or a mapping with a 'cases' list")
    unknown = sorted(set(raw) - TOP_FIELDS)
    if unknown:
        raise ManifestError(f"{path}: unknown top-level field(s) {unknown}; allowed: {sorted(TOP_FIELDS)}")
    if not isinstance(raw["cases"], list) or not raw["cases"]:
        raise ManifestError(f"{path}: field 'cases' must be a non-empty list")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - {"frames", "fps", "size"}:
        raise ManifestError(f"{path}: field 'defaults' may only set 'frames', 'fps' and 'size'")
    metrics = raw.get("metrics") or {}
    if not isinstance(metrics, dict) or set(metrics) - METRICS_FIELDS:
        raise ManifestError(f"{path}: field 'metrics' may only set {', '.join(map(repr, sorted(METRICS_FIELDS)))}")
    if not isinstance(metrics.get("mtbench", False), bool):
        raise ManifestError(f"{path}: field 'metrics.mtbench' must be true or false, got {metrics['mtbench']!r}")
    if metrics.get("oracle") not in (None, "shapes"):
        raise ManifestError(f"{path}: field 'metrics.oracle' must be 'shapes' (the only world with an oracle), "
                            f"got {metrics['oracle']!r}")
    for key in ("clip_model", "clip_pretrained"):  # a file next to the manifest is named relative to it
        if isinstance(metrics.get(key), str) and (path.parent / metrics[key]).is_file():
            metrics[key] = str((path.parent / metrics[key]).resolve())
    root = Path(data_root) if data_root is not None else path.parent / str(raw.get("root", "."))
    cases = [_parse_case(path, root, i, c, defaults) for i, c in enumerate(raw["cases"])]
    seen = set()
    for c in cases:
        if c.id in seen:
            raise ManifestError(f"{path}: case '{c.id}': field 'id' is used by two cases")
        seen.add(c.id)
    if check_files:
        missing = [c for c in cases if not c.reference.exists()]
        required = [c for c in missing if not c.optional]
        if required:
            raise ManifestError(
                f"{path}: {len(required)} reference clip(s) missing: "
                + ", ".join(f"{c.id} ({c.reference})" for c in required)
                + (f" — {raw['source']}" if raw.get("source") else ""))
        for c in missing:
            warn(f"note: {path.name}: skipping optional case '{c.id}': {c.reference} not found")
        cases = [c for c in cases if c not in missing]
        masks = [c for c in cases if c.mask is not None and not c.mask.is_file()]
        if masks:
            raise ManifestError(f"{path}: {len(masks)} mask(s) missing: "
                                + ", ".join(f"{c.id} ({c.mask})" for c in masks))
    return Benchmark(name=str(raw.get("name", path.stem)), path=path, cases=cases,
                     description=str(raw.get("description", "")), metrics=metrics)
