"""The study: one tuning folder, its definition, Optuna's study of each method in OUT/study.sqlite3, and the
locks that let several processes (--jobs, or two eval.tune on one folder) share it.

A process takes a trial under the tuning's lock and holds the trial's liveness lock while it runs it (the
operating system drops it when the process dies), so a trial whose process died is told from one still running
and is taken over, with its number and settings, by the next process that looks: no trial is lost, repeated or
recorded as failed because a process was killed. A process that finds every trial taken waits for those still
running elsewhere, so that each one reports the whole study.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eval.errors import UserError, read_json
from eval.results import atomic_write_text
from eval.tuning.report import write_report
from eval.tuning.trial import TrialError, TrialRunner

STUDY_FILE = "study.sqlite3"
DEFINITION = "tune.json"  # what the tuning is; a resume with another definition is refused
OPS = {">=": lambda v, b: b - v, ">": lambda v, b: b - v, "<=": lambda v, b: v - b, "<": lambda v, b: v - b}
POLL_S = 1.0  # how often a process with nothing to run looks at the trials other processes run


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


class Tuning:
    """One tuning folder: its definition, its study and its trials' folders."""

    def __init__(self, out: Path, args, methods: dict, command: str, constraints: list[Constraint]):
        from eval.metrics import available_metrics, field_info

        self.out, self.args, self.command = out, args, command
        self.methods = methods  # label → (spec as given, Method)
        self.objective = check_field(args.objective, "--objective")
        self.constraints = constraints
        self.maximize = field_info(self.objective).higher_is_better
        owners = {f: name for name, cls in available_metrics().items() for f in cls.fields}
        metrics = list(dict.fromkeys(owners[f] for f in [self.objective, *(c.field for c in constraints)]))
        self.runner = TrialRunner(out, args, methods, metrics, self.objective, constraints)

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
        """Queue again, with the same settings, every trial that failed (once). Its run folder resumes, so no
        finished video is lost."""
        from optuna.trial import TrialState

        for label in self.methods:
            study = self.study(label, storage)
            trials = study.get_trials(deepcopy=False)
            retried = {t.user_attrs.get("retry_of") for t in trials}
            for t in trials:
                if t.state == TrialState.FAIL and t.number not in retried:
                    study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **(
                        {"official": True} if t.user_attrs.get("official") else {})}, skip_if_exists=False)

    def next_trial(self, storage):
        """(label, trial, the trial's lock) of the next trial to run: one whose process died (taken over as it
        is), else a new one; None when every method has its trials running or done. Called under the tuning's
        lock; the official settings are every method's first trial."""
        import optuna
        from optuna.trial import TrialState

        counted = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        for label in self.methods:
            study = self.study(label, storage)
            trials = study.get_trials(deepcopy=False)
            orphan = next((t for t in trials if t.state == TrialState.RUNNING and not self.alive(label, t.number)),
                          None)
            if orphan is not None:
                held = self.hold(label, orphan.number)
                return label, optuna.trial.Trial(study, orphan._trial_id), held
            if not trials:
                study.enqueue_trial({k: p.centre for k, p in self.space(label).items()},
                                    user_attrs={"official": True})
            if sum(t.state in counted for t in trials) < self.args.trials or any(
                    t.state == TrialState.WAITING for t in trials):
                study = self.study(label, storage, len(trials))
                trial = study.ask({k: p.distribution() for k, p in self.space(label).items()})
                return label, trial, self.hold(label, trial.number)
        return None

    def running_elsewhere(self, storage) -> bool:
        from optuna.trial import TrialState

        return any(t.state == TrialState.RUNNING and self.alive(label, t.number)
                   for label in self.methods for t in self.study(label, storage).get_trials(deepcopy=False))

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

    # the work -----------------------------------------------------------------------------------------------
    def work(self):
        """Run trials until every method has its number, then wait for those other processes still run (taking
        over any whose process dies), so that what this process reports is the whole study."""
        storage = self.storage()
        while True:
            with self.lock():
                self.requeue(storage)
                job = self.next_trial(storage)
                waiting = job is None and self.running_elsewhere(storage)
            if job is None:
                if not waiting:
                    return
                time.sleep(POLL_S)
                continue
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
            result = self.runner.run(label, params)
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

    def report(self, storage):
        write_report(self, storage)
