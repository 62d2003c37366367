"""eval.tune: the same number of trials for every method, over the settings each declares, resumable after a kill
with no trial repeated or lost; settings that eval.run --settings applies and records; one-line refusals.

The trials run two cheap methods that a test package registers (the reference clip dimmed by `gain`; the clip
played with a `lag`), scored by its metric `darkness` (lower is better) under a constraint on `motion_epe`."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, run_main
from eval.errors import UserError
from eval.methods import create_method
from eval.metrics import available_metrics
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from eval.search_space import Param
from eval.tune import main as tune_main
from eval.tune import parse_constraint

PLUGIN = '''
import os
import time
from pathlib import Path

import numpy as np

from eval.methods import Method
from eval.metrics.base import Field, Metric
from eval.search_space import Param
from eval.video import Video


class DarknessMetric(Metric):
    name = "darkness"
    fields = {"darkness": Field("255 minus the mean pixel value", higher_is_better=False, range=(0.0, 255.0))}

    def spec(self):
        return {"formula": "255 - mean(frames)"}

    def score(self, sample):
        return {"darkness": 255.0 - float(np.asarray(sample.frames, np.float64).mean())}, {}


class DimMethod(Method):
    """The reference clip times `gain`; waits while the file HANG names exists (so a test can kill it)."""
    name = "dim"
    defaults = {"gain": 0.5}

    def __init__(self, arg=None, device=None):
        super().__init__(arg, device)
        self.settings = dict(self.defaults)

    def search_space(self):
        return {"gain": Param(0.5, 0.1, 1.0)}

    def configure(self, settings):
        unknown = set(settings) - set(self.defaults)
        if unknown:
            from eval.errors import UserError
            raise UserError(f"dim: unknown setting {', '.join(unknown)}")
        self.settings = {**self.defaults, **settings}

    def info(self):
        return {**super().info(), **self.settings}

    def adapt(self, case):
        return case.load_reference()

    def generate(self, state, prompt, seed):
        hang = os.environ.get("HANG")
        if hang:
            Path(hang + ".started").touch()
            while Path(hang).exists():
                time.sleep(0.05)
        return Video((state.frames * self.settings["gain"]).astype(np.uint8), state.fps)


class LagMethod(DimMethod):
    """The reference clip with its first frame held for `lag` frames."""
    name = "lag"
    defaults = {"lag": 0}

    def search_space(self):
        return {"lag": Param(0, choices=(0, 1, 2, 3))}

    def generate(self, state, prompt, seed):
        lag = self.settings["lag"]
        frames = np.concatenate([state.frames[:1].repeat(lag, 0), state.frames[:len(state.frames) - lag]])
        return Video(frames, state.fps)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed package registering the methods dim and lag and the metric darkness, seen by subprocesses."""
    site = tmp_path / "site"
    info = site / "tune_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "tune_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tune-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vmc_suite.methods]\ndim = tune_plugin:DimMethod\n"
                                           "lag = tune_plugin:LagMethod\n"
                                           "[vmc_suite.metrics]\ndarkness = tune_plugin:DarknessMetric\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(REPO)]))
    available_metrics.cache_clear()
    yield site
    monkeypatch.undo()
    available_metrics.cache_clear()


def tune_args(benchmark_dir, out, trials=2):
    return ["--methods", "dim,lag", "--benchmark", str(benchmark_dir / "mini.yaml"), "--cases", "right",
            "--trials", str(trials), "--objective", "darkness", "--constraint", "motion_epe<=50", "--out", str(out)]


def completed(out) -> dict:
    """{method: [(trial number, params, retry_of)] of its complete trials}, read from the study itself."""
    import optuna

    storage = f"sqlite:///{out / 'study.sqlite3'}"
    return {name: [(t.number, t.params, t.user_attrs.get("retry_of"))
                   for t in optuna.load_study(study_name=name, storage=storage).trials
                   if t.state == optuna.trial.TrialState.COMPLETE] for name in ("dim", "lag")}


def test_a_tiny_search_runs_and_its_settings_apply(plugin, benchmark_dir, capsys):
    out = benchmark_dir / "tune"
    code, printed, err = run_main(tune_main, *tune_args(benchmark_dir, out), capsys=capsys)
    assert code == 0, err
    trials = completed(out)
    assert [len(v) for v in trials.values()] == [2, 2]
    assert trials["dim"][0][1] == {"gain": 0.5} and trials["lag"][0][1] == {"lag": 0}  # the official values first
    settings = json.loads((out / "settings.json").read_text())
    assert set(settings["methods"]) == {"dim", "lag"}
    assert settings["tuned_by"]["command"].startswith("python -m eval.tune --methods dim,lag")
    # darkness is lower-is-better: the chosen gain is the brightest tried
    tried = [p["gain"] for _, p, _ in trials["dim"]]
    assert settings["methods"]["dim"]["gain"] == max(tried)
    table = (out / "trials.csv").read_text().splitlines()
    assert len(table) == 5 and table[0].startswith("method,trial,darkness,ci95_low,ci95_high,motion_epe,feasible")
    report = (out / "report.md").read_text()
    assert "| dim | 2/2 |" in report and "| lag | 2/2 |" in report and "lower is better" in report
    assert (out / "objective.svg").read_text().lstrip().startswith("<svg")
    # every trial is an ordinary run folder, which records the settings it ran with
    folder = out / "trials" / "dim" / next(r for r in table if r.startswith("dim,0,")).rsplit(",", 1)[1].split("/")[-1]
    assert json.loads((folder / "run.json").read_text())["methods"]["dim"]["gain"] == 0.5
    # eval.run --settings applies the chosen settings and records them
    run = benchmark_dir / "applied"
    code, _, err = run_main(run_main_cli, "--methods", "dim,lag", "--benchmark", benchmark_dir / "mini.yaml",
                            "--cases", "right", "--metrics", "darkness", "--settings", out / "settings.json",
                            "--out", run, capsys=capsys)
    assert code == 0, err
    recorded = json.loads((run / "run.json").read_text())["methods"]
    assert recorded["dim"]["gain"] == pytest.approx(settings["methods"]["dim"]["gain"])
    assert recorded["lag"]["lag"] == settings["methods"]["lag"]["lag"]
    darkness = [r.metrics["darkness"] for r in RunFolder(run).records() if r.method == "dim"]
    assert sum(darkness) / len(darkness) == pytest.approx(settings["values"]["dim"]["darkness"], abs=1e-9)
    # a second call finds every trial done and runs none
    code, printed, err = run_main(tune_main, *tune_args(benchmark_dir, out), capsys=capsys)
    assert code == 0 and " trial " not in printed.split("wrote")[0]
    assert completed(out) == trials


def gone(pid: int) -> bool:
    """True once the process has exited (a zombie that nothing reaps counts as gone)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def test_a_killed_tuning_takes_its_trial_with_it_and_resumes_at_once(plugin, benchmark_dir):
    """kill -9 of eval.tune's own pid, as a user does: its trial's eval.run dies with it, and a resume started at
    once takes the cut trial over (same number, same settings): no failure, no FAIL trial, none repeated or lost."""
    import optuna

    out = benchmark_dir / "tune"
    hang = benchmark_dir / "hang"
    hang.touch()
    cmd = [sys.executable, "-m", "eval.tune", *tune_args(benchmark_dir, out, trials=2)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "HANG": str(hang)}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while not (benchmark_dir / "hang.started").exists():
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()
            time.sleep(0.05)
        writer = next((out / "trials" / "dim").glob("*/.writer.lock")).read_text()
        trial_pid = int(writer.split()[1])  # "pid N on HOST since …": the trial's eval.run
        os.kill(proc.pid, signal.SIGKILL)  # the tuning alone, in the middle of a video
        proc.wait()
        hang.unlink()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)  # 4 trials, a busy CPU
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert gone(trial_pid)
    trials = completed(out)
    assert [len(v) for v in trials.values()] == [2, 2]
    assert trials["dim"][0] == (0, {"gain": 0.5}, None)  # the cut trial itself, finished by the resume
    storage = f"sqlite:///{out / 'study.sqlite3'}"
    states = [t.state for name in ("dim", "lag") for t in optuna.load_study(study_name=name, storage=storage).trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 4
    folders = sorted(p.name for p in (out / "trials" / "dim").iterdir() if p.is_dir())
    assert len(folders) == len({json.dumps(p, sort_keys=True) for _, p, _ in trials["dim"]})


def test_refusals_are_one_line(plugin, benchmark_dir, capsys):
    out = benchmark_dir / "tune"
    bench = str(benchmark_dir / "mini.yaml")
    code, _, err = run_main(tune_main, "--methods", "dim,reference", "--benchmark", bench, "--trials", "2",
                            "--out", out, capsys=capsys)
    assert code == 2 and "reference: no search space" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(tune_main, "--methods", "dim", "--benchmark", bench, "--trials", "2", "--objective",
                            "darknes", "--out", out, capsys=capsys)
    assert code == 2 and "--objective: unknown field 'darknes'" in err
    code, _, err = run_main(tune_main, "--methods", "dim", "--benchmark", bench, "--trials", "2", "--constraint",
                            "motion_epe=>3", "--out", out, capsys=capsys)
    assert code == 2 and "expected FIELD>=VALUE" in err
    code, _, err = run_main(tune_main, "--methods", "dim", "--benchmark", bench, "--trials", "2", "--fix", "lag=1",
                            "--out", out, capsys=capsys)
    assert code == 2 and "--fix lag: no method of --methods searches it" in err
    assert not out.exists()
    settings = benchmark_dir / "s.json"
    settings.write_text(json.dumps({"methods": {"dim": {"gian": 1.0}}}))
    code, _, err = run_main(run_main_cli, "--methods", "dim", "--benchmark", bench, "--settings", settings,
                            "--out", benchmark_dir / "run", capsys=capsys)
    assert code == 2 and f"{settings}: dim: unknown setting gian" in err
    settings.write_text("{methods")
    code, _, err = run_main(run_main_cli, "--methods", "dim", "--benchmark", bench, "--settings", settings,
                            "--out", benchmark_dir / "run", capsys=capsys)
    assert code == 2 and f"{settings}: not a JSON settings file" in err


def test_a_fixed_setting_is_pinned_for_every_method_that_has_it(plugin, benchmark_dir, capsys):
    out = benchmark_dir / "tune"
    code, _, err = run_main(tune_main, *tune_args(benchmark_dir, out, trials=1), "--fix", "lag=2", capsys=capsys)
    assert code == 0, err
    settings = json.loads((out / "settings.json").read_text())
    assert settings["methods"] == {"dim": {"gain": 0.5}, "lag": {"lag": 2}}
    assert settings["tuned_by"]["fixed"] == {"lag": 2}
    assert "fixed lag=2" in (out / "report.md").read_text()
    args = tune_args(benchmark_dir, out, trials=1)
    args[args.index("--objective") + 1] = "motion_epe"
    code, _, err = run_main(tune_main, *args, "--fix", "lag=2", capsys=capsys)
    assert code == 2 and "this folder tunes objective='darkness'" in err and "use another --out" in err


def test_constraints_parse_any_field_in_its_direction(plugin):
    c = parse_constraint(" oracle_appearance >= 0.7 ")
    assert (c.field, c.op, c.bound) == ("oracle_appearance", ">=", 0.7)
    assert c.violation(0.8) < 0 < c.violation(0.6)
    c = parse_constraint("darkness<1e2")
    assert c.violation(50) < 0 < c.violation(150)
    with pytest.raises(UserError, match="unknown field 'oracle_motions'"):
        parse_constraint("oracle_motions>=0")


def test_every_tunable_recipe_centres_its_space_on_the_official_values():
    from vmc.trainer import TrainConfig

    for name in ("vmc", "vmc-eps", "tav", "md", "motion-inversion"):
        method = create_method(name, device="cpu")
        space, official = method.search_space(), TrainConfig(**method.defaults)
        assert space["steps"].centre == official.steps and space["lr"].centre == pytest.approx(official.lr)
        assert space["lr"].log and space["steps"].integer
    assert set(create_method("md", device="cpu").search_space()) == {"steps", "lr", "rank", "noise_prior"}
    assert create_method("motionclone", device="cpu").search_space()["scale"].centre == 1.0
    assert create_method("dmt", device="cpu").search_space()["guided_share"].centre == 0.4
    for name in ("t2v", "inversion", "reference"):
        assert create_method(name, device="cpu").search_space() == {}
    with pytest.raises(ValueError, match="not within"):
        Param(5.0, 0.0, 1.0)


def test_configured_settings_layer_over_the_backbone_and_reach_the_adapter_key():
    vmc, eps = create_method("vmc", device="cpu"), create_method("vmc-eps", device="cpu")
    shipped = vmc.backbone.adaptation_for("vmc")
    assert eps.config.train.lr == shipped["lr"]  # vmc-eps shares vmc's entry of cascade.json ...
    eps.backbone.adaptation = {**eps.backbone.adaptation, "vmc-eps": {"lr": 0.02}}
    eps.configure({})  # the configuration is built once, when configured: after the backbone changed, again
    assert eps.config.train.lr == 0.02 and eps.config.train.loss == "eps_mse"  # ... and its own comes over it
    eps.configure({"lr": 0.03, "steps": 7})
    info = eps.info()
    assert (info["train"]["lr"], info["train"]["steps"], info["configured"]) == (0.03, 7, {"lr": 0.03, "steps": 7})
    assert "configured" not in vmc.info()
    with pytest.raises(UserError, match="method vmc: unknown setting lrr"):
        vmc.configure({"lrr": 1})
    guided = create_method("motionclone", device="cpu")
    guided.configure({"scale": 2.0})
    assert guided.settings["scale"] == 2.0 and guided.info()["guidance"]["scale"] == 2.0
    with pytest.raises(UserError, match="method motionclone: unknown setting sclae"):
        guided.configure({"sclae": 2.0})
    with pytest.raises(UserError, match="'t2v' has no settings to set"):
        create_method("t2v", device="cpu").configure({"steps": 3})
