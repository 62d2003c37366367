"""MTBench (Shi et al., "Decouple and Track", ICCV 2025; dataset QingyuShi/MTBench) as a benchmark manifest.

python -m eval.mtbench DIR [--out FILE] [--difficulty FILE]

DIR is the downloaded dataset (`huggingface-cli download QingyuShi/MTBench --repo-type dataset --local-dir DIR`)
in the layout DeT's `evaluation.py` reads: one folder per case, `<case>/videos/<case>.mp4` (the reference clip),
`<case>/eval_prompts.txt` (the target prompts, one a line), `<case>/prompts.txt` (the reference's caption, DeT's
training prompt) and optionally `<case>/masks/<case>/00000.png` (the first-frame mask: the case's `mask`).
Case folders may sit in folders named by their difficulty level (easy, medium, hard), or `--difficulty` names
each case's level (a JSON object case → level, or lines `case level`); the level goes into `meta.difficulty`.

The manifest (default DIR/mtbench.yaml) lists every case with its target prompts as MTBench evaluates them
(trailing spaces stripped, as `evaluation.py` does), the caption as train prompt and as `meta.reference_prompt`,
and asks for MTBench's metrics (`metrics.mtbench: true`, with MTBench's CLIP and DINO models).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import yaml

from eval.errors import UserError, cli_main
from eval.manifest import ID_RE, load_benchmark

LEVELS = ("easy", "medium", "hard")
METRICS = {"clip_model": "hf:openai/clip-vit-base-patch32", "dino_model": "hf:facebook/dino-vitb16", "mtbench": True}
SOURCE = ("huggingface-cli download QingyuShi/MTBench --repo-type dataset --local-dir DIR, then "
          "python -m eval.mtbench DIR")


def case_folders(root: Path) -> list[tuple[Path, str | None]]:
    """(case folder, difficulty level from its parent folder's name or None) of every folder holding an
    eval_prompts.txt, directly under `root` or one folder deeper."""
    found = []
    for prompts in sorted(root.glob("*/eval_prompts.txt")) + sorted(root.glob("*/*/eval_prompts.txt")):
        folder = prompts.parent
        parent = folder.parent.name.lower() if folder.parent != root else None
        found.append((folder, parent if parent in LEVELS else None))
    return found


def read_levels(path: Path) -> dict[str, str]:
    """case → level from a JSON object or from lines `case level` (comma, tab or space separated)."""
    if not path.is_file():
        raise UserError(f"{path}: no such difficulty file")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        try:
            levels = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    else:
        levels = {}
        for n, line in enumerate(text.splitlines(), 1):
            parts = line.replace(",", " ").split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) != 2:
                raise UserError(f"{path}: line {n}: expected 'case level', got {line.strip()!r}")
            levels[parts[0]] = parts[1]
    if not isinstance(levels, dict) or not all(isinstance(v, str) for v in levels.values()):
        raise UserError(f"{path}: expected a mapping of case → level")
    bad = {k: v for k, v in levels.items() if v.lower() not in LEVELS}
    if bad:
        case, level = next(iter(bad.items()))
        raise UserError(f"{path}: case '{case}' has level {level!r}; levels are {', '.join(LEVELS)}")
    return {k: v.lower() for k, v in levels.items()}


def _lines(path: Path) -> list[str]:
    """Non-empty lines with trailing spaces stripped (MTBench strips them before it names a prompt's folder)."""
    return [line.rstrip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def convert(root: Path, out: Path, levels_file: Path | None = None, warn=lambda m: print(m, file=sys.stderr)) -> dict:
    """Write the manifest of the MTBench copy at `root` to `out`; returns it."""
    root = root.resolve()
    if not root.is_dir():
        raise UserError(f"{root}: no such folder (download MTBench there: {SOURCE})")
    folders = case_folders(root)
    if not folders:
        raise UserError(f"{root}: no MTBench case (a folder with eval_prompts.txt and videos/<case>.mp4) here or "
                        "one folder deeper")
    levels = read_levels(levels_file) if levels_file else {}
    unknown = sorted(set(levels) - {f.name for f, _ in folders})
    if unknown:
        raise UserError(f"{levels_file}: case(s) {', '.join(unknown[:5])} not in {root}")
    out = out.resolve()
    base = out.parent
    cases, seen = [], {}
    for folder, level in folders:
        cid = folder.name
        if not ID_RE.match(cid):
            raise UserError(f"{folder}: the case name '{cid}' is not a manifest id (letters, digits, '_', '.', '-')")
        if cid in seen:
            raise UserError(f"{folder}: case '{cid}' is also at {seen[cid]}")
        seen[cid] = folder
        video = folder / "videos" / f"{cid}.mp4"
        if not video.is_file():
            raise UserError(f"{folder}: no reference clip videos/{cid}.mp4")
        listed = _lines(folder / "eval_prompts.txt")
        targets = list(dict.fromkeys(listed))
        if not targets:
            raise UserError(f"{folder / 'eval_prompts.txt'}: no prompt")
        if len(targets) < len(listed):
            warn(f"note: {folder / 'eval_prompts.txt'}: a prompt listed twice is kept once")
        caption_file = folder / "prompts.txt"
        if not caption_file.is_file() or not _lines(caption_file):
            raise UserError(f"{caption_file}: missing or empty (the reference clip's caption)")
        caption = _lines(caption_file)[0]
        meta = {"reference_prompt": caption}
        level = levels.get(cid, level)
        if level:
            meta["difficulty"] = level
        case = {"id": cid, "reference": str(video.relative_to(root)), "train_prompt": caption,
                "target_prompts": targets, "meta": meta}
        mask = folder / "masks" / cid / "00000.png"
        if mask.is_file():  # MTBench limits both videos' tracks to the box of this mask
            case["mask"] = str(mask.relative_to(root))
        cases.append(case)
    rel_root = root.relative_to(base) if root.is_relative_to(base) else root  # "." next to the data
    counts = Counter(c["meta"].get("difficulty", "unknown") for c in cases)
    manifest = {"name": "mtbench",
                "description": f"MTBench (DeT, ICCV 2025): {len(cases)} reference clips, "
                               f"{sum(len(c['target_prompts']) for c in cases)} target prompts; difficulty "
                               + ", ".join(f"{k} {counts[k]}" for k in (*LEVELS, "unknown") if counts[k]),
                "source": SOURCE, "root": str(rel_root), "metrics": dict(METRICS), "cases": cases}
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# MTBench as a manifest, written by python -m eval.mtbench from {root}.\n"
              "# meta.difficulty: the case's level; mask: the reference's first-frame mask, whose bounding box limits "
              "MTBench's tracks.\n")
    out.write_text(header + yaml.safe_dump(manifest, sort_keys=False, width=120, allow_unicode=True))
    if not any("difficulty" in c["meta"] for c in cases):
        warn(f"note: no difficulty levels found (no {'/'.join(LEVELS)} folders, no --difficulty file): the cases "
             "have no meta.difficulty")
    load_benchmark(out)  # what is written must load
    return manifest


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.mtbench", description=__doc__.split("\n\n")[1])
    p.add_argument("root", type=Path, help="the downloaded MTBench folder")
    p.add_argument("--out", type=Path, default=None, help="manifest to write (default: ROOT/mtbench.yaml)")
    p.add_argument("--difficulty", type=Path, default=None,
                   help="each case's level: a JSON object case → easy|medium|hard, or lines 'case level'")
    args = p.parse_args(argv)
    out = args.out or args.root / "mtbench.yaml"
    m = convert(args.root, out, args.difficulty)
    print(f"wrote {out}: {len(m['cases'])} cases, {sum(len(c['target_prompts']) for c in m['cases'])} prompts")


if __name__ == "__main__":
    main()
