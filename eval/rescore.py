"""python -m eval.rescore RUN_DIR [metric options]

Score the videos of an `eval.run` folder again with the metrics as they are now, generating nothing. A run
folder refuses to be resumed once a metric's spec has changed (a new version of it, other CLIP options), so
that no summary mixes two definitions; rescoring brings the whole folder to the new specs at the cost of
scoring alone. The metric options are this command's (the benchmark's defaults unless given), not the run's:
pass the ones the run was made with to keep them. results.jsonl, summary.csv and run.json's metric specs are
replaced together once every video is scored. Resumable: scored records are kept in results.rescore.jsonl
until then.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from eval.cli_common import add_metric_args, build_scorer
from eval.errors import UserError, cli_main
from eval.record import Record, Timing
from eval.results import format_table, summarize, write_summary
from eval.rundir import RunFolder

PARTIAL = "results.rescore.jsonl"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m eval.rescore", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a folder written by python -m eval.run")
    p.add_argument("--data-root", type=Path, default=None, help="where the reference clips are (overrides the "
                   "manifest's root)")
    add_metric_args(p)
    return p.parse_args(argv)


def _open(run_dir: Path) -> tuple[RunFolder, list[Record]]:
    """The eval.run folder to rescore and its records, or a UserError saying why it cannot be rescored."""
    folder = RunFolder.existing(run_dir)
    if "benchmark" not in folder.config:
        raise UserError(f"{folder.run_json}: this folder was written by eval.score, not eval.run; score its "
                        "videos again with python -m eval.score and another --out")
    records = folder.scored()
    if list(run_dir.glob("results.rank*.jsonl")):
        raise UserError(f"{run_dir}: holds the part files of an unfinished multi-process run; finish it with the "
                        "same eval.run command first")
    return folder, records


def rescore(folder: RunFolder, records: list[Record], benchmark, scorer) -> list[Record]:
    """Score every record's video again with `scorer`; returns the new records, in the run's order."""
    from eval.metrics import Sample
    from eval.video import read_video

    missing = sorted({r.case for r in records} - {c.id for c in benchmark.cases})
    if missing:
        raise UserError(f"{benchmark.path}: has no case {', '.join(repr(c) for c in missing)} (used in "
                        f"{folder.results})")
    for r in records:
        if not folder.video(r).is_file():
            raise UserError(f"{folder.video(r)}: the video of record '{r.key}' is missing")
    ids = set(scorer.spec_ids().values())
    done = {r.key: r for r in folder.records(PARTIAL)
            if set(r.spec_ids.values()) <= ids}  # scored by these metrics before an interruption
    pending = [r for r in records if r.key not in done]
    references = {}
    with tqdm(total=len(pending), desc="rescoring", unit="video", disable=not pending, dynamic_ncols=True) as bar:
        for r in pending:
            case = benchmark.case(r.case)
            if case.id not in references:
                references[case.id] = case.load_reference().frames
            video = read_video(folder.video(r))
            t0 = time.perf_counter()
            scored = scorer.score_many([Sample(video.frames, r.prompt, references[case.id],
                                               case.meta.get("reference_prompt"),
                                               reference_mask=case.load_mask())])[0]
            score_s = round(time.perf_counter() - t0, 4)
            done[r.key] = replace(r, **scored, timing=replace(r.timing or Timing(), score_s=score_s))
            folder.append([done[r.key]], PARTIAL)
            bar.update()
    return [done[r.key] for r in records]


@cli_main
def main(argv=None):
    from eval.manifest import load_benchmark

    args = parse_args(argv)
    _open(args.run_dir)  # a clear error for what is not an eval.run folder, before the lock file is made
    with RunFolder(args.run_dir).lock():
        folder, records = _open(args.run_dir)
        benchmark = load_benchmark(folder.manifest, data_root=args.data_root)
        scorer = build_scorer(args, benchmark.metrics)
        _rescore_folder(folder, records, benchmark, scorer)


def _rescore_folder(folder: RunFolder, records: list[Record], benchmark, scorer):
    records = rescore(folder, records, benchmark, scorer)
    # results first: if this is cut short here, the partial file stays and a rerun only writes again
    folder.replace(records)
    folder.write_config({**folder.config, "metric_specs": scorer.specs(), "metric_spec_ids": scorer.spec_ids(),
                         "rescored": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    summary = summarize(records, list(dict.fromkeys(r.method for r in records)))  # the run's method order
    write_summary(summary, folder.path / "summary.csv")
    (folder.path / PARTIAL).unlink()
    print(f"\n{len(records)} videos in {folder.path} scored again\n")
    print(format_table(summary))


if __name__ == "__main__":
    main()
