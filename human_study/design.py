"""Study design from a run directory: items, blinding, display orders, attention checks, and the key.

An item is one (case, target prompt, seed) for which every chosen method has a video. Raters see the reference
clip and each method's output under an opaque id, in an order shuffled per item from the study seed (the HTML
form also shuffles the item order per rater). Two kinds of attention check are hidden among the candidates:
the reference clip itself (its motion preservation must be rated high) and another item's output shown with this
item's prompt (its text alignment must be rated low). Which id is which method or check lives only in `key.json`,
beside — never inside — the `rater/` folder that is sent to raters or platforms.
"""

from __future__ import annotations

import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from eval.errors import UserError, read_json
from eval.rundir import RunFolder
from human_study.questions import ANCHORS, QUESTIONS

FORMAT_VERSION = 1
# Attention checks pass when the reference's own motion is rated >= 4 and a mismatched prompt's text alignment <= 2.
DEFAULT_CHECK_RULES = {"reference_check": {"question": "motion", "min": 4},
                       "mismatch_check": {"question": "text", "max": 2}}


@dataclass
class Study:
    """`public`: what raters may see (study.json); `key`: the blinding key; `media`: file name -> source."""
    public: dict
    key: dict
    media: dict

    @property
    def items(self) -> list[dict]:
        return self.public["items"]


def _token(rng: random.Random, used: set, prefix: str) -> str:
    while True:
        t = f"{prefix}{rng.getrandbits(40):010x}"
        if t not in used:
            used.add(t)
            return t


def build_study(run_dir: str | os.PathLike, methods: list[str], seed: int = 0, max_items: int | None = None,
                checks: int | None = None, questions: list[dict] = QUESTIONS,
                scale: dict[int, str] = ANCHORS) -> Study:
    """Choose items, blind the candidates and place the attention checks (`checks` of each kind; default one per
    five items, at least one). `questions`, `scale`: what raters answer (human_study.config)."""
    run_dir = Path(run_dir)
    if not methods:
        raise UserError("no methods given (use --methods a,b,...)")
    if len(set(methods)) != len(methods):
        raise UserError(f"--methods lists a method twice: {','.join(methods)}")
    folder = RunFolder.existing(run_dir)
    records = folder.scored()
    present = sorted({r.method for r in records})
    for m in methods:
        if m not in present:
            raise UserError(f"{run_dir}: has no videos of method '{m}' (methods in this run: {', '.join(present)})")

    groups: dict[tuple, dict] = {}  # (case, prompt, seed) → method → record
    for r in records:
        if r.method in methods:
            groups.setdefault(r.unit("video"), {})[r.method] = r
    complete = sorted(k for k, g in groups.items() if len(g) == len(methods))
    if not complete:
        raise UserError(f"{run_dir}: no (case, prompt, seed) has a video from every one of {', '.join(methods)}")
    rng = random.Random(seed)
    if max_items is not None:
        if max_items < 1:
            raise UserError("--max-items must be at least 1")
        if max_items < len(complete):
            complete = sorted(rng.sample(complete, max_items))
    n_items = len(complete)
    n_checks = max(1, math.ceil(n_items / 5)) if checks is None else checks
    if not 0 <= n_checks <= n_items:
        raise UserError(f"--checks must be between 0 and the number of items ({n_items})")
    prompts = {k[1] for k in complete}
    ids = {q["id"] for q in questions}
    for rule in DEFAULT_CHECK_RULES.values():
        bound = rule.get("min", rule.get("max"))
        if n_checks and (rule["question"] not in ids or not min(scale) < bound < max(scale)):
            raise UserError(f"the attention checks ask for question '{rule['question']}' rated "
                            f"{'≥' if 'min' in rule else '≤'} {bound} inside the scale; this study's questions "
                            f"({', '.join(sorted(ids))}) or scale ({min(scale)}–{max(scale)}) have no room for it: "
                            "use --checks 0 to go without checks")
    if n_checks and len(prompts) < 2:
        raise UserError("the mismatched-prompt attention check needs items with at least two different prompts; "
                        "use --checks 0 to go without checks")

    used: set = set()
    media: dict[str, Path | dict] = {}
    blind: dict[str, dict] = {}
    items = []
    ref_checks = set(rng.sample(range(n_items), n_checks))
    mismatch_checks = set(rng.sample(range(n_items), n_checks))
    for i, (case, prompt, vseed) in enumerate(complete):
        group = groups[(case, prompt, vseed)]
        item_id = f"item{i + 1:03d}"
        reference = folder.reference(next(iter(group.values())))
        ref_name = f"{_token(rng, used, 'r')}.mp4"
        media[ref_name] = {"reference": reference}
        candidates = []
        for m in methods:
            bid = _token(rng, used, "v")
            media[f"{bid}.mp4"] = folder.video(group[m])
            blind[bid] = {"item_id": item_id, "kind": "method", "method": m, "case": case, "prompt": prompt,
                          "seed": vseed, "source": group[m].video}
            candidates.append(bid)
        if i in ref_checks:
            bid = _token(rng, used, "v")
            media[f"{bid}.mp4"] = {"reference": reference}
            blind[bid] = {"item_id": item_id, "kind": "reference_check", "method": None, "case": case,
                          "prompt": prompt, "seed": vseed, "source": str(reference)}
            candidates.append(bid)
        if i in mismatch_checks:
            others = [k for k in complete if k[1] != prompt]
            other = others[rng.randrange(len(others))]
            m = methods[rng.randrange(len(methods))]
            bid = _token(rng, used, "v")
            media[f"{bid}.mp4"] = folder.video(groups[other][m])
            blind[bid] = {"item_id": item_id, "kind": "mismatch_check", "method": m, "case": other[0],
                          "prompt": other[1], "seed": other[2], "source": groups[other][m].video}
            candidates.append(bid)
        rng.shuffle(candidates)
        items.append({"item_id": item_id, "prompt": prompt, "reference": f"media/{ref_name}",
                      "candidates": [{"blind_id": b, "video": f"media/{b}.mp4"} for b in candidates]})

    study_id = f"study-{random.Random(f'{seed}|{run_dir.resolve()}|{methods}').getrandbits(32):08x}"
    public = {"format": "likert-study", "version": FORMAT_VERSION, "study_id": study_id, "seed": seed,
              "questions": questions, "scores": {str(k): v for k, v in scale.items()}, "items": items}
    key = {"study_id": study_id, "run": str(run_dir.resolve()), "methods": methods, "seed": seed,
           "check_rules": DEFAULT_CHECK_RULES, "blind": blind}
    return Study(public, key, media)


def write_media(study: Study, rater_dir: Path):
    """Copy every output under its opaque name; re-encode references (they may be GIFs or frame folders). The
    media of one item share one frame count, frame rate and size, so that no video stands out by its sharpness
    or speed: those of most of its outputs (ties: the first method's), the others brought to them by the rule of
    videos made elsewhere (eval.protocol)."""
    from tqdm import tqdm

    from eval.protocol import Protocol, to_protocol
    from eval.video import read_video, video_geometry, write_video

    media_dir = rater_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)

    def file_of(source) -> Path:
        path = Path(source["reference"]) if isinstance(source, dict) else source
        if not isinstance(source, dict) and not path.is_file():
            raise UserError(f"{source}: video listed in the run's results.jsonl is missing")
        return path

    geometry = {name: video_geometry(file_of(source)) for name, source in study.media.items()}
    target = {}
    for item in study.items:
        names = {Path(item["reference"]).name, *(Path(c["video"]).name for c in item["candidates"])}
        outputs = [geometry[n] for n in study.media if n in names and not isinstance(study.media[n], dict)]
        frames, fps, size = max(outputs, key=outputs.count) if outputs else geometry[Path(item["reference"]).name]
        target.update({n: Protocol(frames, fps, tuple(size)) for n in names})
    encoded: dict[tuple, Path] = {}
    for name, source in tqdm(sorted(study.media.items()), desc="media", unit="video", dynamic_ncols=True):
        path, out, protocol = file_of(source), media_dir / name, target[name]
        if (path, protocol) in encoded:
            shutil.copyfile(encoded[path, protocol], out)
        elif not isinstance(source, dict) and not protocol.differences(*geometry[name]):
            shutil.copyfile(path, out)
        else:
            write_video(out, to_protocol(read_video(path), protocol)[0])
            encoded[path, protocol] = out


def load_study(study_dir: str | os.PathLike) -> tuple[dict, dict]:
    """(public design, key) of an exported study folder."""
    study_dir = Path(study_dir)
    out = []
    for name in ("rater/study.json", "key.json"):
        path = study_dir / name
        if not path.is_file():
            raise UserError(f"{study_dir}: not a study folder (no {name}); make one with python -m human_study export")
        out.append(read_json(path))
    if out[0].get("study_id") != out[1].get("study_id"):
        raise UserError(f"{study_dir}: rater/study.json and key.json belong to different studies")
    return out[0], out[1]
