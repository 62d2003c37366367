"""python -m eval.tune --methods vmc,vmc-eps,tav,md --benchmark shapes-dev --trials 8 --objective oracle_motion
                     --constraint "oracle_appearance>=0.7" [--out runs/tune-shapes-dev] [--jobs 2]

Give every method the same search for its settings, on a development split. Each method gets exactly --trials
complete trials over the settings it declares tunable (its search space: per-clip tuning searches steps and
learning rate and the recipe's own knobs, guidance its weight and guided share; the official values are the first
trial), proposed by Optuna's TPE sampler (the first quarter of the trials, at least two, at random). A trial is an
ordinary `eval.run` folder, scored by the suite; its value is the objective field's mean over the target prompts.
Constraints are any metric fields bounded with >=, <=, > or <; the best trial is the best one that meets them all.

The study lives in OUT/study.sqlite3, so a killed tuning resumes where it stopped: a trial cut short is run again
with the same settings (its run folder resumes too), none is repeated or lost. --jobs N runs N trials at once in
separate processes (one CPU thread each on a CPU). Writes OUT/settings.json (the chosen settings per method, which
`python -m eval.run --settings` takes and a backbone's cascade.json entries can hold), OUT/trials.csv (every trial),
OUT/report.md (the best value per method with its 95% interval over target prompts) and OUT/objective.svg (the
objective against trial number).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eval.errors import UserError, cli_main, read_json
from eval.results import atomic_write_text
from eval.search_space import settings_hash
from eval.spreadsheet import frame_to_csv

DEFAULT_BENCHMARK = "shapes-dev"
DEFAULT_OBJECTIVE = "oracle_motion"
STUDY_FILE = "study.sqlite3"
DEFINITION = "tune.json"  # what the tuning is; a resume with another definition is refused
OPS = {">=": lambda v, b: b - v, ">": lambda v, b: b - v, "<=": lambda v, b: v - b, "<": lambda v, b: v - b}


@dataclass(frozen=True)
class Constraint:
    """A metric field's mean bounded from one side: `oracle_appearance>=0.7`."""
    field: str
    op: str
    bound: float

    def violation(self, value: float) -> float:
        """By how much the value misses the bound; ≤ 0 when it is met (Optuna's convention)."""
        return OPS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.bound:g}"


def check_field(name: str, what: str) -> str:
    from eval.metrics import all_fields

    if name not in all_fields():
        raise UserError(f"{what}: unknown field '{name}' (fields: {', '.join(all_fields())})")
    return name


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


class Tuning:
    """One tuning folder: its definition, its study and its trials' folders."""

    def __init__(self, out: Path, args, methods: dict, command: str):
        self.out, self.args, self.command = out, args, command
        self.methods = methods  # label → (spec as given, Method)
        self.objective = check_field(args.objective, "--objective")
        self.constraints = [parse_constraint(c) for c in args.constraint]
        from eval.metrics import available_metrics, field_info

        self.maximize = field_info(self.objective).higher_is_better
        owners = {f: name for name, cls in available_metrics().items() for f in cls.fields}
        self.metrics = list(dict.fromkeys(owners[f] for f in [self.objective, *(c.field for c in self.constraints)]))

    # the folder ---------------------------------------------------------------------------------------------
    def definition(self) -> dict:
        a = self.args
        return {"benchmark": a.benchmark, "objective": self.objective,
                "constraints": [str(c) for c in self.constraints], "seeds": a.seeds, "cases": a.cases, "seed": a.seed,
                "fixed": a.fix}

    def check_definition(self):
        """Write the definition on the first start; refuse to resume a folder tuned for something else."""
        path = self.out / DEFINITION
        if path.exists():
            old = read_json(path)
            diff = [k for k, v in self.definition().items() if old.get(k) != v]
            if diff:
                raise UserError(f"{path}: this folder tunes {', '.join(f'{k}={old.get(k)!r}' for k in diff)}, not "
                                f"{', '.join(f'{k}={self.definition()[k]!r}' for k in diff)}; use another --out")
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(self.definition(), indent=1))

    @contextmanager
    def lock(self):
        """The tuning's lock, held while a process reads or changes the study (never while a trial runs)."""
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / ".tune.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def space(self, label: str) -> dict:
        """What is searched for a method: its search space less what --fix pins."""
        return {k: p for k, p in self.methods[label][1].search_space().items() if k not in self.args.fix}

    def fixed(self, label: str) -> dict:
        """The --fix values that apply to a method (those in its search space)."""
        return {k: v for k, v in self.args.fix.items() if k in self.methods[label][1].search_space()}

    def trial_dir(self, label: str, params: dict) -> Path:
        return self.out / "trials" / label / settings_hash(params)

    # the study ----------------------------------------------------------------------------------------------
    def storage(self):
        import optuna

        return optuna.storages.RDBStorage(f"sqlite:///{(self.out / STUDY_FILE).resolve()}",
                                          engine_kwargs={"connect_args": {"timeout": 60}})

    def study(self, label: str, storage, n_trials: int = 0):
        import optuna

        sampler = optuna.samplers.TPESampler(seed=self.args.seed * 100_003 + n_trials,
                                             n_startup_trials=max(2, self.args.trials // 4))
        return optuna.create_study(storage=storage, study_name=label, sampler=sampler, load_if_exists=True,
                                   direction="maximize" if self.maximize else "minimize")

    def requeue(self, storage):
        """Queue again, with the same settings, every trial that did not finish: cut short by a dead process (its
        lock is free) or failed. Its run folder resumes, so no trial is lost and none is counted twice."""
        from optuna.trial import TrialState

        for label in self.methods:
            study = self.study(label, storage)
            trials = study.get_trials(deepcopy=False)
            retried = {t.user_attrs.get("retry_of") for t in trials}
            for t in trials:
                if t.number in retried or t.state not in (TrialState.RUNNING, TrialState.FAIL):
                    continue
                if t.state == TrialState.RUNNING:
                    if self.alive(label, t.number):
                        continue
                    study.tell(t.number, state=TrialState.FAIL)
                study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **(
                    {"official": True} if t.user_attrs.get("official") else {})}, skip_if_exists=False)

    def next_trial(self, storage):
        """(label, trial, the trial's lock) of the next trial to run, or None when every method has its trials
        running or done. Called under the tuning's lock; the official settings are every method's first trial."""
        from optuna.trial import TrialState

        counted = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        for label in self.methods:
            study = self.study(label, storage)
            trials = study.get_trials(deepcopy=False)
            if not trials:
                study.enqueue_trial({k: p.centre for k, p in self.space(label).items()},
                                    user_attrs={"official": True})
            if sum(t.state in counted for t in trials) < self.args.trials or any(
                    t.state == TrialState.WAITING for t in trials):
                study = self.study(label, storage, len(trials))
                trial = study.ask({k: p.distribution() for k, p in self.space(label).items()})
                return label, trial, self.hold(label, trial.number)
        return None

    def liveness(self, label: str, number: int) -> Path:
        return self.out / "trials" / label / f".trial-{number}.lock"

    def hold(self, label: str, number: int) -> int:
        """Lock the trial's liveness file for as long as this process runs it (the OS drops it if it dies)."""
        path = self.liveness(label, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def alive(self, label: str, number: int) -> bool:
        """True while some process holds the trial's liveness lock."""
        path = self.liveness(label, number)
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    # one trial ----------------------------------------------------------------------------------------------
    def run_trial(self, label: str, params: dict) -> dict:
        """Run the trial's eval.run folder (resuming it) and read its value and constraints."""
        spec = self.methods[label][0]
        params = {**self.fixed(label), **params}
        folder = self.trial_dir(label, params)
        folder.parent.mkdir(parents=True, exist_ok=True)
        settings = folder.with_suffix(".json")
        atomic_write_text(settings, json.dumps({"methods": {label: params}}, indent=1))
        a = self.args
        cmd = [sys.executable, "-m", "eval.run", "--methods", spec, "--benchmark", a.benchmark, "--seeds", a.seeds,
               "--out", str(folder), "--settings", str(settings), "--jobs", "1", "--metrics", ",".join(self.metrics)]
        cmd += [*(["--cases", a.cases] if a.cases else []), *(["--data-root", str(a.data_root)] if a.data_root else []),
                *(["--device", a.device] if a.device else [])]
        fd = os.open(folder.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:  # a trial proposing the settings of one still running waits for it, then finds its videos made
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(folder.with_suffix(".log"), "a") as log:  # the log keeps eval.run's items bar, not its inner bars
                done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, "VMC_INNER_BARS": "0"})
        finally:
            os.close(fd)
        if done.returncode:
            lines = folder.with_suffix(".log").read_text(errors="replace").strip().splitlines()
            raise TrialError(f"{label} trial {folder.name}: eval.run exited {done.returncode}: "
                             f"{lines[-1] if lines else '(no output)'} (log: {folder.with_suffix('.log')})")
        return self.score(label, folder)

    def score(self, label: str, folder: Path) -> dict:
        """The objective's and the constraints' means over target prompts, as the trial's summary has them."""
        from eval.results import summarize
        from eval.rundir import RunFolder

        summary = summarize([r for r in RunFolder(folder).records() if r.method == label]).set_index("metric")
        means = {}
        for name in [self.objective, *(c.field for c in self.constraints)]:
            if name not in summary.index or not summary.loc[name, "n"]:
                raise TrialError(f"{label} trial {folder.name}: {name} is undefined for every video of {folder}")
            row = summary.loc[name]
            means[name] = (float(row["mean"]), float(row["ci95_low"]), float(row["ci95_high"]))
        value, lo, hi = means[self.objective]
        return {"value": value, "ci": [lo, hi], "folder": str(folder.relative_to(self.out)),
                "constraint_values": {c.field: means[c.field][0] for c in self.constraints},
                "violations": [c.violation(means[c.field][0]) for c in self.constraints]}

    def work(self):
        """Run trials until every method has its number: take one under the lock, run it, report it."""
        storage = self.storage()
        with self.lock():
            self.requeue(storage)
        while True:
            with self.lock():
                job = self.next_trial(storage)
            if job is None:
                return
            label, trial, held = job
            try:
                self.run_one(storage, label, trial)
            finally:
                os.close(held)

    def run_one(self, storage, label: str, trial):
        from optuna.trial import TrialState

        params = dict(trial.params)
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        print(f"{label} trial {trial.number}: {shown}", flush=True)
        try:
            result = self.run_trial(label, params)
        except TrialError as e:
            with self.lock():
                trial.set_user_attr("error", str(e))
                self.study(label, storage).tell(trial.number, state=TrialState.FAIL)
            raise UserError(f"{e}; fix it and rerun the same command to go on") from None
        with self.lock():
            for key, value in result.items():
                trial.set_user_attr(key, value)
            for c, violation in zip(self.constraints, result["violations"]):
                trial.set_constraint(str(c), violation)  # TPE prefers the trials that meet them
            self.study(label, storage).tell(trial.number, result["value"])
            self.report(storage)
            met = "" if not self.constraints else (" (meets the constraints)" if max(result["violations"]) <= 0
                                                   else " (misses a constraint)")
            print(f"{label} trial {trial.number}: {self.objective} {result['value']:.4f}{met}", flush=True)

    # the report ---------------------------------------------------------------------------------------------
    def rows(self, storage) -> list[dict]:
        from optuna.trial import TrialState

        rows = []
        for label in self.methods:
            for t in self.study(label, storage).get_trials(deepcopy=False):
                if t.state != TrialState.COMPLETE:
                    continue
                a = t.user_attrs
                rows.append({"method": label, "trial": t.number, self.objective: t.value, "ci95_low": a["ci"][0],
                             "ci95_high": a["ci"][1], **a.get("constraint_values", {}),
                             "feasible": max(a.get("violations") or [0.0]) <= 0, "official": bool(a.get("official")),
                             "settings": json.dumps(t.params, sort_keys=True), "folder": a["folder"]})
        return rows

    def best(self, rows: list[dict]) -> dict[str, dict]:
        """Per method, the best trial that meets every constraint (else the best of all, marked infeasible)."""
        chosen = {}
        for label in self.methods:
            mine = [r for r in rows if r["method"] == label]
            pool = [r for r in mine if r["feasible"]] or mine
            if pool:
                pick = max if self.maximize else min
                chosen[label] = pick(pool, key=lambda r: r[self.objective])
        return chosen

    def report(self, storage):
        import pandas as pd

        rows = self.rows(storage)
        best = self.best(rows)
        atomic_write_text(self.out / "trials.csv", frame_to_csv(pd.DataFrame(rows), index=False))
        atomic_write_text(self.out / "settings.json", json.dumps({
            "tuned_by": {**self.definition(), "trials": self.args.trials, "command": self.command},
            "methods": {label: {**self.fixed(label), **json.loads(r["settings"])} for label, r in best.items()},
            "values": {label: {self.objective: r[self.objective], "ci95": [r["ci95_low"], r["ci95_high"]],
                               "feasible": r["feasible"], "trial": r["trial"]} for label, r in best.items()}},
            indent=1))
        atomic_write_text(self.out / "report.md", self.markdown(rows, best))
        if rows:
            self.plot(rows)

    def markdown(self, rows, best) -> str:
        direction = "higher" if self.maximize else "lower"
        lines = [f"# Tuning on {self.args.benchmark}", "",
                 f"Objective: `{self.objective}` ({direction} is better), mean over target prompts with its 95% "
                 f"interval. Constraints: {', '.join(f'`{c}`' for c in self.constraints) or 'none'}. "
                 f"{self.args.trials} trials per method; seeds {self.args.seeds}.", "",
                 "The best of several trials chosen on the same videos is biased upwards: judge the chosen settings "
                 "on another split (`python -m eval.run --settings settings.json`).", "",
                 "| method | trials | official settings | best | settings | trial folder |",
                 "|---|---|---|---|---|---|"]
        for label in self.methods:
            mine = [r for r in rows if r["method"] == label]
            official = next((r for r in mine if r["official"]), None)
            b = best.get(label)
            cell = "—" if b is None else (f"{b[self.objective]:.3f} [{b['ci95_low']:.3f}, {b['ci95_high']:.3f}]"
                                          + ("" if b["feasible"] else " (no trial met the constraints)"))
            settings, folder = ("—", "—") if b is None else (f"`{b['settings']}`", b["folder"])
            lines.append(f"| {label} | {len(mine)}/{self.args.trials} | "
                         f"{'—' if official is None else f'{official[self.objective]:.3f}'} | {cell} | {settings} | "
                         f"{folder} |")
        lines += ["", "Search spaces (the official value first):", ""]
        for label in self.methods:
            space = ", ".join(f"{k} {p.centre} in {p.describe()}" for k, p in self.space(label).items())
            fixed = ", ".join(f"{k}={v}" for k, v in self.fixed(label).items())
            lines.append(f"- {label}: {space}{f'; fixed {fixed}' if fixed else ''}")
        return "\n".join(lines + ["", "![objective against trial](objective.svg)", ""])

    def plot(self, rows):
        import altair as alt
        import pandas as pd

        df = pd.DataFrame(rows).sort_values(["method", "trial"])
        df["order"] = df.groupby("method").cumcount() + 1
        feasible = df[self.objective].where(df["feasible"]).groupby(df["method"])  # the best is chosen among these
        df["best so far"] = feasible.cummax() if self.maximize else feasible.cummin()
        df["best so far"] = df.groupby("method")["best so far"].ffill()
        x = alt.X("order:Q", title="trial of the method", scale=alt.Scale(domain=[1, int(df["order"].max())]),
                  axis=alt.Axis(tickMinStep=1, format="d"))
        points = alt.Chart(df).mark_point(filled=True, size=60).encode(
            x=x, y=alt.Y(f"{self.objective}:Q", title=self.objective, scale=alt.Scale(zero=False)), color="method:N",
            shape=alt.Shape("feasible:N", title="meets constraints"), tooltip=["method", "trial", "settings"])
        line = alt.Chart(df).mark_line(strokeDash=[4, 3]).encode(x=x, y="best so far:Q", color="method:N")
        (points + line).properties(width=520, height=300, title=f"{self.objective} per trial").save(
            str(self.out / "objective.svg"))


class TrialError(Exception):
    """A trial that could not run or be scored."""


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
    tuning = Tuning(args.out or Path("runs") / f"tune-{Path(args.benchmark).stem}", args, methods, command)
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
        workers = [subprocess.Popen([sys.executable, "-m", "eval.tune", *argv, "--worker"]) for _ in range(args.jobs)]
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
