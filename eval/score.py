"""python -m eval.score --videos DIR --prompts PROMPTS.csv --out OUT

Score any folder of videos (e.g. the outputs of a closed system). PROMPTS.csv has columns `video,prompt` and
optionally `reference` (a clip to compare motion against; relative paths resolve against the CSV's folder)
and `method` (to score several methods at once; default: the folder's name). Writes OUT/results.jsonl (one
line per video, every metric with its spec) and OUT/summary.csv, with paths stored relative to OUT (so the
folder opens from anywhere, and after being moved with the videos). Resumable: rerunning skips scored videos.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from eval.cli_common import add_metric_args, build_scorer
from eval.engine import check_compatible
from eval.errors import UserError, VideoError, cli_main
from eval.record import Record
from eval.results import format_table, summarize, write_summary
from eval.rundir import RunFolder


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m eval.score", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=Path, required=True, help="folder the CSV's video paths are relative to")
    p.add_argument("--prompts", type=Path, required=True, help="CSV with columns video,prompt[,reference][,method]")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="threads decoding videos and computing flow (default: min(8, cores))")
    add_metric_args(p)
    return p.parse_args(argv)


def read_prompts(path: Path, videos: Path, default_method: str, out: RunFolder) -> list[dict]:
    """The CSV's rows, checked; `reference` as stored in the records (relative to `out`), `video_path` and
    `reference_path` as read here."""
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
                         "video_path": str(videos / video), "reference_path": str(ref_path) if ref_path else None,
                         "reference": out.stored_path(ref_path) if ref_path else None})
    if not rows:
        raise UserError(f"{path}: lists no videos")
    return rows


def _decode(row: dict, scorer, pin: bool):
    """Decode one listed video (and its reference) and compute its per-video metrics (all but the batched
    ones, CLIP). With `pin`, the frames are copied to page-locked memory here, so the copy to the GPU runs
    asynchronously. Returns (video, error, per-video outputs, the sample for the batched metrics)."""
    from eval.metrics import Sample
    from eval.video import read_video

    try:
        video = read_video(row["video_path"])
        reference = read_video(row["reference_path"]).frames if row["reference_path"] else None
        sample = Sample(video.frames, row["prompt"], reference)
        scores = scorer.score_rest(sample)
    except VideoError as e:
        return None, e, None, None
    if pin:
        import torch

        sample = Sample(torch.from_numpy(video.frames).pin_memory(), row["prompt"], reference)
    return video, None, scores, sample


def decoded(rows: list[dict], scorer, workers: int, pin: bool = False):
    """Yield _decode(row) in order, up to 4×workers rows ahead on a thread pool. Threads, not processes:
    PyAV and OpenCV release the GIL, and frames then need no copy between processes."""
    if workers <= 1 or len(rows) < 2:
        yield from (_decode(r, scorer, pin) for r in rows)
        return
    with ThreadPoolExecutor(workers) as pool:
        window = deque(pool.submit(_decode, r, scorer, pin) for r in rows[:4 * workers])
        for nxt in rows[4 * workers:] + [None] * len(window):
            result = window.popleft().result()
            if nxt is not None:
                window.append(pool.submit(_decode, nxt, scorer, pin))
            yield result


def score_rows(rows: list[dict], scorer, out: RunFolder, workers: int, on_error=None):
    """Decode on `workers` threads, hand the batched metrics batches of at least `scorer.batch_size` frames,
    and append the records of each batch to `out` with one write."""
    pending = []

    def flush(bar):
        batched = scorer.score_batched([sample for _, _, _, sample in pending])
        out.append([Record(rows[i]["key"], rows[i]["method"], rows[i]["prompt"], rows[i]["video"],
                           **scorer.assemble(b, rest), reference=rows[i]["reference"], num_frames=v.num_frames,
                           fps=v.fps, size=list(v.size))
                    for (i, v, rest, _), b in zip(pending, batched)])
        bar.update(len(pending))
        pending.clear()

    with tqdm(total=len(rows), desc="scoring", unit="video", disable=not rows, dynamic_ncols=True) as bar:
        for i, (video, error, rest, sample) in enumerate(decoded(rows, scorer, workers, scorer.pins_memory)):
            if error:
                raise on_error(error, bar.n) if on_error else error
            pending.append((i, video, rest, sample))
            if sum(p[1].num_frames for p in pending) >= scorer.batch_size:
                flush(bar)
        if pending:
            flush(bar)


def _to_run_relative(out: RunFolder):
    """Bring a folder written before paths were stored relative to it (they were relative to the directory
    the command ran in, which this one is taken to be) to the present form: its records' reference paths."""
    if out.config.get("paths") == "run":
        return
    out.replace([replace(r, reference=out.stored_path(r.reference))
                 if r.reference and not Path(r.reference).is_absolute() else r for r in out.records()])


@cli_main
def main(argv=None):
    args = parse_args(argv)
    out = RunFolder(args.out)
    rows = read_prompts(args.prompts, args.videos, default_method=args.videos.resolve().name, out=out)
    scorer = build_scorer(args)
    with out.lock():
        fresh = not out.run_json.exists()
        try:
            _score_folder(args, out, rows, scorer)
        except BaseException:
            if fresh and not out.records():  # nothing scored: leave no run.json to bind the next command
                out.run_json.unlink(missing_ok=True)
            raise


def _score_folder(args, out: RunFolder, rows: list[dict], scorer):
    config = {"videos": out.stored_path(args.videos), "prompts": out.stored_path(args.prompts),
              "metric_specs": scorer.specs(), "metric_spec_ids": scorer.spec_ids(),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **out.path_fields()}
    if out.run_json.exists() and out.records():  # what nothing was scored with may change
        check_compatible(out.run_json, out.config, config, keys=("metric_specs",))
        _to_run_relative(out)
    out.write_config(config)
    done = {r.key for r in out.records()}
    todo = [r for r in rows if r["key"] not in done]
    score_rows(todo, scorer, out, args.workers, on_error=lambda error, n: VideoError(
        f"{error} (listed in {args.prompts}; {len(done) + n} videos scored so far are kept and a rerun resumes)"))
    records = out.records()
    summary = summarize(records)
    write_summary(summary, args.out / "summary.csv")
    print(f"\n{len(records)} scored videos in {args.out}\n")
    print(format_table(summary))


if __name__ == "__main__":
    main()
