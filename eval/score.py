"""python -m eval.score --videos DIR --prompts PROMPTS.csv --out OUT

Score any folder of videos (e.g. the outputs of a closed system). PROMPTS.csv has columns `video,prompt` and
optionally `reference` (a clip to compare motion against; relative paths resolve against the CSV's folder)
and `method` (to score several methods at once; default: the folder's name). Writes OUT/results.jsonl (one
line per video, every metric with its spec) and OUT/summary.csv. Resumable: rerunning skips scored videos.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from eval.cli_common import add_metric_args, build_scorer
from eval.errors import UserError, VideoError, cli_main
from eval.results import ResultsWriter, atomic_write_text, format_table, read_results, summarize, write_summary


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m eval.score", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=Path, required=True, help="folder the CSV's video paths are relative to")
    p.add_argument("--prompts", type=Path, required=True, help="CSV with columns video,prompt[,reference][,method]")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="processes decoding videos and computing flow (default: min(8, cores))")
    add_metric_args(p)
    return p.parse_args(argv)


def read_prompts(path: Path, videos: Path, default_method: str) -> list[dict]:
    if not path.is_file():
        raise UserError(f"{path}: no such prompts CSV")
    if not videos.is_dir():
        raise UserError(f"{videos}: no such folder of videos")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"video", "prompt"} <= set(reader.fieldnames):
            raise UserError(f"{path}: needs a header with columns video,prompt (optional: reference, method); "
                            f"got {reader.fieldnames}")
        rows, seen = [], set()
        for row in reader:
            line = reader.line_num
            video, prompt = (row.get("video") or "").strip(), (row.get("prompt") or "").strip()
            if not video or not prompt:
                raise UserError(f"{path}: line {line}: empty video or prompt")
            if not (videos / video).is_file():
                raise UserError(f"{path}: line {line}: video '{video}' not found in {videos}")
            ref = (row.get("reference") or "").strip()
            ref_path = (path.parent / ref) if ref else None
            if ref_path is not None and not ref_path.exists():
                raise UserError(f"{path}: line {line}: reference '{ref}' not found")
            method = (row.get("method") or "").strip() or default_method
            key = f"{method}|{video}|{prompt}"
            if key in seen:
                raise UserError(f"{path}: line {line}: video '{video}' with this prompt is listed twice")
            seen.add(key)
            rows.append({"key": key, "method": method, "video": video, "prompt": prompt,
                         "video_path": str(videos / video), "reference": str(ref_path) if ref_path else None})
    if not rows:
        raise UserError(f"{path}: lists no videos")
    return rows


class _Decode:
    """Worker side (a map-style dataset): decode the video (and its reference) and compute the CPU-bound
    motion metrics."""

    def __init__(self, rows, motion):
        self.rows, self.motion = rows, motion

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        from eval.video import read_video

        row = self.rows[i]
        try:
            video = read_video(row["video_path"])
            motion = self.motion.score(video.frames, read_video(row["reference"]).frames) if row["reference"] \
                else None
        except VideoError as e:
            return i, None, str(e), None, None
        import torch

        return i, torch.from_numpy(video.frames), None, motion, (video.num_frames, video.fps, list(video.size))


@cli_main
def main(argv=None):
    args = parse_args(argv)
    rows = read_prompts(args.prompts, args.videos, default_method=args.videos.resolve().name)
    scorer = build_scorer(args)
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "run.json", json.dumps({
        "videos": str(args.videos), "prompts": str(args.prompts), "metric_specs": scorer.specs(),
        "metric_spec_ids": scorer.spec_ids(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    writer = ResultsWriter(args.out / "results.jsonl")
    done = {r["key"] for r in read_results(args.out / "results.jsonl")}
    todo = [r for r in rows if r["key"] not in done]
    loader = torch.utils.data.DataLoader(
        _Decode(todo, scorer.motion), batch_size=None, num_workers=args.workers if len(todo) > 1 else 0,
        pin_memory=scorer.clip.device.type == "cuda", prefetch_factor=4 if args.workers and len(todo) > 1 else None)
    pending, frames_pending = [], 0

    def flush():
        nonlocal frames_pending
        clip_out = scorer.clip.score_many([(frames, todo[i]["prompt"]) for i, frames, _, _ in pending])
        for (i, _, motion, meta), c in zip(pending, clip_out):
            row = todo[i]
            writer.append({"key": row["key"], "method": row["method"], "video": row["video"],
                           "prompt": row["prompt"], "reference": row["reference"], "num_frames": meta[0],
                           "fps": meta[1], "size": meta[2], **scorer.assemble(c, motion)})
        pending.clear()
        frames_pending = 0

    with tqdm(total=len(todo), desc="scoring", unit="video", disable=not todo, dynamic_ncols=True) as bar:
        for i, frames, error, motion, meta in loader:
            if error:
                raise VideoError(f"{error} (listed in {args.prompts}; {len(done) + bar.n} videos scored so far are "
                                 "kept and a rerun resumes)")
            pending.append((i, frames, motion, meta))
            frames_pending += len(frames)
            if frames_pending >= scorer.clip.batch_size:
                n = len(pending)
                flush()
                bar.update(n)
        if pending:
            n = len(pending)
            flush()
            bar.update(n)
    records = read_results(args.out / "results.jsonl")
    summary = summarize(records)
    write_summary(summary, args.out / "summary.csv")
    print(f"\n{len(records)} scored videos in {args.out}\n")
    print(format_table(summary))


if __name__ == "__main__":
    main()
