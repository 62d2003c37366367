"""python -m bench.device: every section runs at --smoke and writes its figures; the budget skips what would not
fit, naming it, and stops a section still running where it ends; bad input is one line."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # bench/ is the repository's, not the installed package's
    sys.path.insert(0, str(REPO))

from bench.device import SECTIONS, Section, main, problem, run_sections  # noqa: E402
from eval.errors import UserError  # noqa: E402


def test_smoke_runs_every_section_and_writes_its_figures(tmp_path, capsys):
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, "-m", "bench.device", "--smoke", "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["smoke"] and [s["name"] for s in result["sections"]] == [s.name for s in SECTIONS]
    figures = {}
    for f in result["figures"]:
        assert isinstance(f["value"], float) and f["unit"] and "target" in f and f["wall_s"] >= 0
        assert f["device"].startswith("CPU") and f["torch"] and f["diffusers"] and f["settings"]
        figures.setdefault(f["section"], []).append(f)
    for section, record in zip(SECTIONS, result["sections"]):
        if problem(section):  # the DiT backbones, until this build has their kind
            assert record["status"] == "skipped" and "backbone kind not available in this build" in record["reason"]
            assert f"skip {section.name}: backbone kind not available in this build" in run.stdout
        elif record["status"] == "skipped":  # a method refused on the backbone's kind in one line
            assert section.model is not None and record["reason"], record
            assert section.model != "zeroscope-random" or "DiT-native" in record["reason"], record
        else:
            assert record["status"] == "measured", record
            assert figures[section.name], section.name
    targets = {f["name"]: f["target"] for f in result["figures"]}
    assert targets["unet/sdpa: evaluation"] == 55 and targets["vmc/short-convs: step"] == 95
    assert targets["cascade/sdpa: per prompt"] == 60
    # the Markdown table at the end, and again from the file
    assert "| `vmc/sdpa-fp32-weights: step` |" in run.stdout
    table = subprocess.run([sys.executable, "-m", "bench.device", "--table", str(out)], cwd=REPO,
                           capture_output=True, text=True, timeout=120).stdout
    assert table.strip() in run.stdout
    # an earlier run's wall times as the estimates
    main(["--list", "--smoke", "--estimates", str(out), "--only", "unet"])
    wall = next(s["wall_s"] for s in result["sections"] if s["name"] == "unet/sdpa")
    assert capsys.readouterr().out.splitlines()[0] == f"{'unet/sdpa':32s} {wall:6.0f} s  "


def _fake(name, estimate, takes, clock, model=None):
    def measure():
        clock[0] += takes
        return {"s": takes}

    return Section(name, measure, {}, {"s": ("s", None)}, estimate, estimate, model)


def test_sections_that_would_not_fit_are_skipped_and_named_and_later_ones_still_run():
    clock, lines = [100.0], []
    sections = [_fake("a/first", 10, 12, clock), _fake("b/big", 50, 50, clock), _fake("c/small", 5, 4, clock),
                _fake("d/other-kind", 1, 1, clock), _fake("e/late", 20, 20, clock)]
    records = run_sections(sections, 40, 100.0, lambda s: s.measure(), lambda s: s.estimate_s,
                           lambda s: "backbone kind not available in this build" if s.name == "d/other-kind" else None,
                           clock=lambda: clock[0], say=lines.append, reserve_s=5)
    status = {r["name"]: (r["status"], r.get("reason")) for r in records}
    assert status["a/first"] == ("measured", None) and status["c/small"] == ("measured", None)
    assert status["b/big"] == ("skipped", "would not fit: estimated 50 s, 23 s left")
    assert status["d/other-kind"] == ("skipped", "backbone kind not available in this build")
    assert status["e/late"] == ("skipped", "would not fit: estimated 20 s, 19 s left")
    assert "skip b/big: would not fit: estimated 50 s, 23 s left" in lines
    assert clock[0] - 100 <= 40 - 5


def test_a_section_running_where_the_budget_ends_is_stopped_and_the_run_goes_on():
    def slow():
        time.sleep(30)

    def broken():
        raise RuntimeError("CUDA out of memory\nmore lines")

    started = time.monotonic()
    def refused():
        raise UserError("tav: sparse-causal attention has no meaning in full 3D attention")

    started = time.monotonic()
    sections = [Section("x/broken", broken, {}, {}, 0, 0), Section("x/refused", refused, {}, {}, 0, 0),
                Section("x/slow", slow, {}, {}, 0.1, 0.1), Section("x/after", lambda: {}, {}, {}, 0.1, 0.1)]
    records = run_sections(sections, 1.5, started, lambda s: s.measure(), lambda s: s.estimate_s, lambda s: None,
                           say=lambda line: None, reserve_s=0)
    assert time.monotonic() - started < 5
    assert [r["status"] for r in records] == ["failed", "skipped", "stopped", "skipped"]
    assert records[0]["reason"] == "RuntimeError: CUDA out of memory"
    assert records[1]["reason"] == "tav: sparse-causal attention has no meaning in full 3D attention"
    assert records[2]["reason"].startswith("stopped where the budget ends")


@pytest.mark.parametrize("args, message", [
    (["--only", "vmc,nope", "--out", "x.json"], "--only nope: no such section"),
    (["--smoke"], "--out FILE.json is required"),
    (["--smoke", "--out", "x.json", "--budget-s", "3"], "--budget-s 3: give more than"),
])
def test_bad_input_is_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
