"""python -m human_study export | aggregate

export:    blinded Likert survey from a run directory, for a static HTML site, MTurk, Label Studio or Qualtrics.
aggregate: answers from those platforms (or a long CSV) → unblinded, exclusions applied, statistics and tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from eval.errors import UserError, cli_main
from eval.results import atomic_write_text
from eval.spreadsheet import frame_to_csv
from human_study.config import load_config
from human_study.design import build_study, load_study, write_media
from human_study.exclusion import Rules, apply_exclusions
from human_study.export import FORMATS
from human_study.ingest import REFERENCE, Collector, ingest
from human_study.stats import (N_BOOTSTRAP, agreement, method_differences, method_means, paper_table,
                               significance)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m human_study", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write a blinded study folder: rater/ (send this) and key.json (keep this)")
    e.add_argument("--run", type=Path, required=True, help="run directory written by eval.run or eval.score")
    e.add_argument("--methods", required=True, help="comma-separated methods to compare")
    e.add_argument("--format", default="html",
                   help=f"comma-separated: {', '.join(FORMATS)}, or 'all' (default: html)")
    e.add_argument("--out", type=Path, required=True, help="study folder to create")
    e.add_argument("--seed", type=int, default=0, help="seed of item choice, blind ids, orders and checks")
    e.add_argument("--max-items", type=int, help="sample this many items (case × prompt × seed); default all")
    e.add_argument("--checks", type=int, help="attention checks of each kind (default: one per five items)")
    e.add_argument("--media-url", help="URL where rater/media/ will be hosted (needed by MTurk, Label Studio, "
                                       "Qualtrics; the HTML site uses relative paths)")
    e.add_argument("--completion-url", help="where raters go when done, e.g. "
                                            "https://app.prolific.com/submissions/complete?cc=CODE")
    e.add_argument("--post-url", help="the HTML form also POSTs its answers (JSON) to this URL")
    e.add_argument("--force", action="store_true", help="replace an existing study folder")
    e.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="YAML: title, instructions, consent, duration_minutes, questions, scale, autoplay, loop "
                        "(each optional; default: the VMC study's four questions on 1–5, no consent text)")

    a = sub.add_parser("aggregate", help="ingest answers, unblind, exclude, and write the statistics")
    a.add_argument("--study", type=Path, required=True, help="study folder written by export")
    a.add_argument("--answers", type=Path, nargs="+", required=True, help="answer files (any supported format)")
    a.add_argument("--out", type=Path, required=True, help="output folder")
    a.add_argument("--against", help="method the Wilcoxon tests and the differences compare with (default: the "
                                     "study's first method)")
    a.add_argument("--max-failed-checks", type=int, default=0, help="attention checks a rater may fail (default 0)")
    a.add_argument("--straightline-min", type=int, default=8,
                   help="flag raters whose ratings are all identical over at least this many (default 8)")
    a.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP, help="bootstrap resamples (default 2000)")
    a.add_argument("--keep-going", action="store_true",
                   help="write the results even when answers had problems (they are listed in problems.csv)")
    return p.parse_args(argv)


def export(args):
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    formats = list(FORMATS) if args.format == "all" else [f.strip() for f in args.format.split(",") if f.strip()]
    for f in formats:
        if f not in FORMATS:
            raise UserError(f"unknown format '{f}' (formats: {', '.join(FORMATS)}, all)")
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        raise UserError(f"{args.out}: already exists and is not empty (use --force to replace it)")
    config = load_config(args.config)
    study = build_study(args.run, methods, seed=args.seed, max_items=args.max_items, checks=args.checks,
                        questions=config["questions"], scale=config["scale"])
    options = {"media_url": args.media_url, "completion_url": args.completion_url, "post_url": args.post_url,
               "form": config["form"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    try:
        rater = tmp / "rater"
        write_media(study, rater)
        (rater / "study.json").write_text(json.dumps(study.public, indent=1, ensure_ascii=False) + "\n")
        (tmp / "key.json").write_text(json.dumps(study.key, indent=1, ensure_ascii=False) + "\n")
        for f in formats:
            FORMATS[f](study.public, rater, options)
        if args.out.exists():
            shutil.rmtree(args.out)
        os.replace(tmp, args.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_checks = sum(1 for b in study.key["blind"].values() if b["kind"] != "method")
    print(f"{args.out}: {len(study.items)} items, {len(methods)} methods, {n_checks} attention checks; "
          f"formats: {', '.join(formats)}")
    print(f"  send: {args.out / 'rater'}/   keep private: {args.out / 'key.json'}")
    if set(formats) - {"html"} and not args.media_url:
        print("  note: no --media-url given; MTurk, Label Studio and Qualtrics need the videos of rater/media/ "
              "at a public URL", file=sys.stderr)


def aggregate(args):
    study, key = load_study(args.study)
    collected = ingest(args.answers, study)
    problems = pd.DataFrame(collected.problems, columns=["where", "problem"])
    if len(problems):
        for where, problem in collected.problems[:20]:
            print(f"{where}: {problem}", file=sys.stderr)
        if len(problems) > 20:
            print(f"... and {len(problems) - 20} more problems", file=sys.stderr)
        if not args.keep_going:
            raise UserError(f"{len(problems)} problem(s) in the answers (listed above; none were counted); fix "
                            f"them or pass --keep-going to write results without those answers")
    methods = key["methods"]
    against = args.against or methods[0]
    if against not in methods:
        raise UserError(f"--against {against}: not a method of this study ({', '.join(methods)})")
    kept, exclusions = apply_exclusions(collected, study, key,
                                        Rules(args.max_failed_checks, args.straightline_min))
    print(pd.DataFrame(exclusions)[["rule", "raters_flagged", "raters_removed", "raters_left"]].to_string(index=False))
    unplayable = unplayable_reports(collected, study, key, kept)
    if len(unplayable):
        files = unplayable.groupby(["file", "item_id"])["rater_id"].nunique().sort_values(ascending=False)
        print(f"{unplayable['rater_id'].nunique()} rater(s) skipped {len(unplayable)} video(s) they could not play "
              f"(never rated); the files:")
        for (file, item_id), n in files.head(10).items():
            print(f"  {args.study / 'rater' / file} ({item_id}): {n} rater(s)")
        if len(files) > 10:
            print(f"  ... and {len(files) - 10} more files")
    rows = []
    for a in collected.answers:
        blind = key["blind"][a.blind_id]
        rows.append({"rater_id": a.rater_id, "item_id": a.item_id, "blind_id": a.blind_id,
                     "question": a.question, "score": a.score, "kind": blind["kind"], "method": blind["method"],
                     "case": blind["case"], "prompt": blind["prompt"], "kept": a.rater_id in kept,
                     "where": a.where})
    answers = pd.DataFrame(rows, columns=["rater_id", "item_id", "blind_id", "question", "score", "kind", "method",
                                          "case", "prompt", "kept", "where"])
    scored = answers[answers["kept"] & (answers["kind"] == "method")]
    if scored.empty:
        raise UserError("no answers left to aggregate after the exclusions (see the counts above)")
    questions = [q["id"] for q in study["questions"]]
    means = method_means(scored, methods, questions, n_boot=args.bootstrap, seed=study["seed"])
    tests = significance(scored, methods, questions, against)
    differences = method_differences(scored, methods, questions, against, n_boot=args.bootstrap, seed=study["seed"])
    alpha = agreement(scored, questions, [int(s) for s in study["scores"]])
    md, tex = paper_table(means, methods, questions, {q["id"]: q["label"] for q in study["questions"]})

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("table.csv", means), ("tests.csv", tests), ("differences.csv", differences),
                        ("agreement.csv", alpha),
                        ("exclusions.csv", pd.DataFrame(exclusions)), ("answers.csv", answers),
                        ("unplayable.csv", unplayable), ("problems.csv", problems)):
        atomic_write_text(out / name, frame_to_csv(frame, index=False))
    atomic_write_text(out / "table.md", md)
    atomic_write_text(out / "table.tex", tex)

    print()
    print(md)
    print(f"written to {out}/ (table.csv/.md/.tex, tests.csv, differences.csv, agreement.csv, exclusions.csv, "
          f"answers.csv, unplayable.csv, problems.csv)")


def unplayable_reports(collected: Collector, study: dict, key: dict, kept: set) -> pd.DataFrame:
    """One row per video a rater skipped as unplayable, with the file under rater/ to check and what it shows."""
    files = {(item["item_id"], REFERENCE): item["reference"] for item in study["items"]}
    files.update({(item["item_id"], c["blind_id"]): c["video"] for item in study["items"] for c in item["candidates"]})
    rows = []
    for r in collected.unplayable:
        blind = key["blind"].get(r.blind_id, {"kind": REFERENCE})
        rows.append({"rater_id": r.rater_id, "item_id": r.item_id, "blind_id": r.blind_id,
                     "file": files[(r.item_id, r.blind_id)], "kind": blind["kind"], "method": blind.get("method"),
                     "source": blind.get("source"), "kept": r.rater_id in kept, "where": r.where})
    return pd.DataFrame(rows, columns=["rater_id", "item_id", "blind_id", "file", "kind", "method", "source", "kept",
                                       "where"])


@cli_main
def main(argv=None):
    args = parse_args(argv)
    export(args) if args.command == "export" else aggregate(args)


if __name__ == "__main__":
    main()
