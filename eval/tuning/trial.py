"""One trial: an ordinary `eval.run` folder, run in a child process that dies with its parent, and scored.

The child runs in its parent's process group (Ctrl-C and `kill -- -PGID` reach both) and, on Linux, asks the
kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG), so a `kill -9` of `eval.tune` alone leaves no trial
running on. A trial waits, before it starts, for any process still holding its run folder's lock (a child of a
killed tuning in its last moments) to be gone.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from eval.results import atomic_write_text
from eval.rundir import LOCK_FILE
from eval.search_space import settings_hash

PR_SET_PDEATHSIG = 1
HOLDER_WAIT_S = 60  # how long a trial waits for a dying holder of its run folder's lock


class TrialError(Exception):
    """A trial that could not run or be scored."""


def child(cmd: list[str], **kwargs) -> subprocess.Popen:
    """Start a child process that dies with this one."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the process group is what remains
        prctl = None

    def die_with_parent():  # in the child, before it runs: SIGKILL when the parent dies, and at once if it has
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

    return subprocess.Popen(cmd, preexec_fn=die_with_parent, **kwargs)


def wait_for_holder(folder: Path):
    """Wait until no process holds the run folder's writer lock (one of a killed tuning is dying)."""
    path = folder / LOCK_FILE
    if not path.exists():
        return
    fd = os.open(path, os.O_RDWR)
    try:
        deadline = time.monotonic() + HOLDER_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # eval.run then names the holder
                time.sleep(0.05)
    finally:
        os.close(fd)


class TrialRunner:
    """Runs trials of one tuning: `out` its folder, `args` its command line, `metrics` what a trial scores."""

    def __init__(self, out: Path, args, methods: dict, metrics: list[str], objective: str, constraints: list):
        self.out, self.args, self.methods, self.metrics = out, args, methods, metrics
        self.objective, self.constraints = objective, constraints

    def fixed(self, label: str) -> dict:
        """The --fix values that apply to a method (those in its search space)."""
        return {k: v for k, v in self.args.fix.items() if k in self.methods[label][1].search_space()}

    def trial_dir(self, label: str, params: dict) -> Path:
        return self.out / "trials" / label / settings_hash(params)

    def run(self, label: str, params: dict) -> dict:
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
            wait_for_holder(folder)
            with open(folder.with_suffix(".log"), "a") as log:  # the log keeps eval.run's items bar, not its inner bars
                code = child(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VMC_INNER_BARS": "0"}).wait()
        finally:
            os.close(fd)
        if code:
            lines = folder.with_suffix(".log").read_text(errors="replace").strip().splitlines()
            raise TrialError(f"{label} trial {folder.name}: eval.run exited {code}: "
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
