"""python -m eval.tune --methods vmc,vmc-eps,tav,md --benchmark shapes-dev --trials 8 --objective oracle_motion
                     --constraint "oracle_appearance>=0.7" [--out runs/tune-shapes-dev] [--jobs 2]

Give every method the same search for its settings, on a development split. Each method gets exactly --trials
complete trials over the settings it declares tunable (its search space: per-clip tuning searches steps and
learning rate and the recipe's own knobs, guidance its weight and guided share; the official values are the first
trial), proposed by Optuna's TPE sampler (the first quarter of the trials, at least two, at random). A trial is an
ordinary `eval.run` folder, scored by the suite; its value is the objective field's mean over the target prompts.
Constraints are any metric fields bounded with >=, <=, > or <; the best trial is the best one that meets them all.

The study lives in OUT/study.sqlite3, so a killed tuning resumes where it stopped: a trial cut short is taken
over with its number and settings (its run folder resumes too), none is repeated, lost or recorded as failed; a
trial's eval.run dies with the tuning that started it. --jobs N runs N trials at once in separate processes (one
CPU thread each on a CPU), and two eval.tune on one folder share its trials, each reporting the whole study.
The parts are in eval/tuning/: the study, the trial runner and the report. Writes OUT/settings.json (the chosen settings per method, which
`python -m eval.run --settings` takes and a backbone's cascade.json entries can hold), OUT/trials.csv (every trial),
OUT/report.md (the best value per method with its 95% interval over target prompts) and OUT/objective.svg (the
objective against trial number).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from eval.errors import UserError, cli_main
from eval.tuning.study import Constraint, Tuning, check_field
from eval.tuning.trial import child

DEFAULT_BENCHMARK = "shapes-dev"
DEFAULT_OBJECTIVE = "oracle_motion"


def parse_constraint(text: str) -> Constraint:
    m = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*", text)
    if not m:
        raise UserError(f"--constraint {text!r}: expected FIELD>=VALUE (or <=, >, <), e.g. oracle_appearance>=0.7")
    return Constraint(check_field(m[1], f"--constraint {text!r}"), m[2], float(m[3]))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m eval.tune", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", required=True, help="comma-separated methods with a search space, e.g. vmc,tav")
    p.add_argument("--trials", type=int, required=True, help="complete trials per method (the same for every one)")
    p.add_argument("--benchmark", default=DEFAULT_BENCHMARK,
                   help=f"the development split (default: {DEFAULT_BENCHMARK})")
    p.add_argument("--objective", default=DEFAULT_OBJECTIVE, help="the metric field to optimise, in the direction "
                   f"its metric declares (default: {DEFAULT_OBJECTIVE})")
    p.add_argument("--constraint", action="append", default=[], metavar="FIELD>=VALUE",
                   help="a bound on a metric field's mean that the chosen trial must meet (repeatable)")
    p.add_argument("--out", type=Path, default=None, help="the tuning folder (default: runs/tune-<benchmark>)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds of every trial (default: 0)")
    p.add_argument("--cases", default=None, help="comma-separated case ids of every trial (default: all)")
    p.add_argument("--data-root", type=Path, default=None, help="where the reference clips are")
    p.add_argument("--device", default=None, help="torch device of the trials (default: cuda if available)")
    p.add_argument("--jobs", type=int, default=1, help="trials run at once, each in its own process (default: 1)")
    p.add_argument("--fix", action="append", default=[], metavar="SETTING=VALUE",
                   help="pin a setting for every method whose space has it, instead of searching it (repeatable; "
                        "e.g. steps=200 gives every tuned method the same adaptation budget)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (default: 0)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of the --jobs processes
    return p.parse_args(argv)


def parse_fixed(items: list[str]) -> dict:
    """{setting: value} of the --fix options; a value is read as JSON (a number, true/false) or kept as text."""
    fixed = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--fix {item!r}: expected SETTING=VALUE, e.g. steps=200")
        try:
            fixed[key.strip()] = json.loads(value)
        except ValueError:
            fixed[key.strip()] = value.strip()
    return fixed


def resolve_methods(text: str, device: str | None) -> dict:
    from eval.cli_common import method_options
    from eval.methods import create_method

    methods, refused = {}, []
    for spec in (s.strip() for s in text.split(",") if s.strip()):
        method = create_method(spec, device=device, options=method_options())
        if not method.search_space():
            refused.append(method.label)
        methods[method.label] = (spec, method)
    if refused:
        raise UserError(f"{', '.join(refused)}: no search space (nothing of {'it' if len(refused) == 1 else 'them'} "
                        "is tunable); tune methods that declare one, e.g. vmc, tav, md, motionclone")
    if not methods:
        raise UserError("--methods is empty")
    return methods


@cli_main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.fix = parse_fixed(args.fix)
    if args.trials < 1 or args.jobs < 1:
        raise UserError("--trials and --jobs must be positive")
    methods = resolve_methods(args.methods, args.device)
    unused = [k for k in args.fix if not any(k in m.search_space() for _, m in methods.values())]
    if unused:
        raise UserError(f"--fix {', '.join(unused)}: no method of --methods searches "
                        f"{'it' if len(unused) == 1 else 'them'}")
    command = shlex.join(["python", "-m", "eval.tune", *(a for a in argv if a != "--worker")])
    tuning = Tuning(args.out or Path("runs") / f"tune-{Path(args.benchmark).stem}", args, methods, command,
                    [parse_constraint(c) for c in args.constraint])
    from eval.manifest import load_benchmark

    load_benchmark(args.benchmark, data_root=args.data_root)  # a bad benchmark fails here, not in every trial
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tuning.lock():
        tuning.check_definition()
        tuning.storage()  # creates the study's tables once, under the lock
    if args.jobs == 1 or args.worker:
        tuning.work()
    else:
        workers = [child([sys.executable, "-m", "eval.tune", *argv, "--worker"]) for _ in range(args.jobs)]
        codes = [w.wait() for w in workers]
        if any(codes):
            raise SystemExit(max(codes))
    if args.worker:
        return
    with tuning.lock():
        tuning.report(tuning.storage())
    print(f"wrote {tuning.out / 'settings.json'}, {tuning.out / 'report.md'}, {tuning.out / 'trials.csv'}")
    print((tuning.out / "report.md").read_text())


if __name__ == "__main__":
    main()
