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
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from eval.cli_common import add_metric_args, build_scorer
from eval.errors import UserError, cli_main
from eval.results import (ResultsWriter, atomic_write_text, format_table, read_results, summarize, write_results,
                          write_summary)
from eval.rundir import WriterLock, load_run, manifest_path

PARTIAL = "results.rescore.jsonl"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m eval.rescore", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a folder written by python -m eval.run")
    p.add_argument("--data-root", type=Path, default=None, help="where the reference clips are (overrides the "
                   "manifest's root)")
    add_metric_args(p)
    return p.parse_args(argv)


def _load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    config, records = load_run(run_dir)
    if "benchmark" not in config:
        raise UserError(f"{run_dir / 'run.json'}: this folder was written by eval.score, not eval.run; score its "
                        "videos again with python -m eval.score and another --out")
    if list(run_dir.glob("results.rank*.jsonl")):
        raise UserError(f"{run_dir}: holds the part files of an unfinished multi-process run; finish it with the "
                        "same eval.run command first")
    return config, records


def rescore(run_dir: Path, records: list[dict], benchmark, scorer) -> list[dict]:
    """Score every record's video again with `scorer`; returns the new records, in the run's order."""
    from eval.metrics import Sample
    from eval.video import read_video

    missing = sorted({r["case"] for r in records} - {c.id for c in benchmark.cases})
    if missing:
        raise UserError(f"{benchmark.path}: has no case {', '.join(repr(c) for c in missing)} (used in "
                        f"{run_dir / 'results.jsonl'})")
    for r in records:
        if not (run_dir / r["video"]).is_file():
            raise UserError(f"{run_dir / r['video']}: the video of record '{r['key']}' is missing")
    ids = set(scorer.spec_ids().values())
    partial = run_dir / PARTIAL
    done = {r["key"]: r for r in (read_results(partial) if partial.exists() else [])
            if set(r.get("spec_ids", {}).values()) <= ids}  # scored by these metrics before an interruption
    writer = ResultsWriter(partial)
    pending = [r for r in records if r["key"] not in done]
    references = {}
    with tqdm(total=len(pending), desc="rescoring", unit="video", disable=not pending, dynamic_ncols=True) as bar:
        for r in pending:
            case = benchmark.case(r["case"])
            if case.id not in references:
                references[case.id] = case.load_reference().frames
            video = read_video(run_dir / r["video"])
            t0 = time.perf_counter()
            scored = scorer.score_many([Sample(video.frames, r["prompt"], references[case.id],
                                               case.meta.get("reference_prompt"))])[0]
            timing = {**r.get("timing", {}), "score_s": round(time.perf_counter() - t0, 4)}
            done[r["key"]] = {**{k: v for k, v in r.items() if k != "details"}, **scored, "timing": timing}
            writer.append(done[r["key"]])
            bar.update()
    return [done[r["key"]] for r in records]


@cli_main
def main(argv=None):
    from eval.manifest import load_benchmark

    args = parse_args(argv)
    _load_run(args.run_dir)  # a clear error for what is not an eval.run folder, before the lock file is made
    with WriterLock(args.run_dir):
        config, records = _load_run(args.run_dir)
        benchmark = load_benchmark(manifest_path(args.run_dir, config), data_root=args.data_root)
        scorer = build_scorer(args, benchmark.metrics)
        _rescore_folder(args, config, records, benchmark, scorer)


def _rescore_folder(args, config, records, benchmark, scorer):
    records = rescore(args.run_dir, records, benchmark, scorer)
    # results first: if this is cut short here, the partial file stays and a rerun only writes again
    write_results(args.run_dir / "results.jsonl", records)
    config.update(metric_specs=scorer.specs(), metric_spec_ids=scorer.spec_ids(),
                  rescored=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    atomic_write_text(args.run_dir / "run.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    summary = summarize(records, list(dict.fromkeys(r["method"] for r in records)))  # the run's method order
    write_summary(summary, args.run_dir / "summary.csv")
    (args.run_dir / PARTIAL).unlink()
    print(f"\n{len(records)} videos in {args.run_dir} scored again\n")
    print(format_table(summary))


if __name__ == "__main__":
    main()
