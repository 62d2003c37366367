"""eval.rescore: a run folder scored again under new metric specs matches a fresh run under them, survives an
interruption, and refuses what it cannot rescore with one line."""

import json

import pandas as pd

from conftest import mini_with_tiny_clip, run_main
from eval.rescore import PARTIAL
from eval.rescore import main as rescore_main
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from eval.scoring import Scorer
from test_run import _comparable, _precomputed


def _metric_rows(run_dir):
    """summary.csv without the protocol facts (generation times differ between runs)."""
    df = pd.read_csv(run_dir / "summary.csv")
    return df[~df.metric.str.startswith("protocol.")].reset_index(drop=True)


def _run(bench, pre, out, *extra, capsys=None):
    return run_main(run_main_cli, "--methods", f"reference,precomputed:{pre}", "--benchmark", bench, "--out", out,
                    "--seeds", "0,1", "--jobs", "1", *extra, capsys=capsys)


def test_rescoring_under_new_specs_matches_a_fresh_run_and_lets_the_folder_resume(benchmark_dir, tiny_clip, capsys):
    bench, pre = mini_with_tiny_clip(benchmark_dir, tiny_clip), _precomputed(benchmark_dir / "pre")
    old, fresh = benchmark_dir / "old", benchmark_dir / "fresh"
    assert _run(bench, pre, old)[0] == 0
    assert _run(bench, pre, fresh, "--clip-frames", "4")[0] == 0
    before = RunFolder(old).records()

    code, _, err = _run(bench, pre, old, "--clip-frames", "4", capsys=capsys)
    assert code == 2 and f"python -m eval.rescore {old}" in err

    assert run_main(rescore_main, old, "--clip-frames", "4", capsys=capsys)[0] == 0
    after = RunFolder(old).records()
    assert [r.key for r in after] == [r.key for r in before]
    assert _comparable(after) == _comparable(RunFolder(fresh).records())
    assert [r.timing.generate_s for r in after] == [r.timing.generate_s for r in before]
    config, fresh_config = (json.loads((d / "run.json").read_text()) for d in (old, fresh))
    assert config["metric_spec_ids"] == fresh_config["metric_spec_ids"] and "rescored" in config
    pd.testing.assert_frame_equal(_metric_rows(old), _metric_rows(fresh))
    assert not (old / PARTIAL).exists()
    assert _run(bench, pre, old, "--clip-frames", "4")[0] == 0  # resumes now, with nothing left to do
    assert _comparable(RunFolder(old).records()) == _comparable(after)


def test_an_interrupted_rescore_keeps_its_work_and_changes_nothing_until_done(benchmark_dir, tiny_clip,
                                                                              monkeypatch, capsys):
    bench, pre = mini_with_tiny_clip(benchmark_dir, tiny_clip), _precomputed(benchmark_dir / "pre")
    out = benchmark_dir / "run"
    assert _run(bench, pre, out)[0] == 0
    results, run_json = (out / "results.jsonl").read_text(), (out / "run.json").read_text()
    calls, real = [], Scorer.score_many

    def failing(self, items):
        calls.append(len(items))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, items)

    monkeypatch.setattr(Scorer, "score_many", failing)
    assert run_main(rescore_main, out, "--clip-frames", "4", capsys=capsys)[0] == 130
    assert len(RunFolder(out).records(PARTIAL)) == 3
    assert (out / "results.jsonl").read_text() == results and (out / "run.json").read_text() == run_json
    counted = []
    monkeypatch.setattr(Scorer, "score_many", lambda self, items: counted.append(1) or real(self, items))
    assert run_main(rescore_main, out, "--clip-frames", "4", capsys=capsys)[0] == 0
    assert len(counted) == len(RunFolder(out).records()) - 3  # the three scored before are kept


def test_what_cannot_be_rescored_is_one_line(benchmark_dir, tiny_clip, capsys):
    bench, pre = mini_with_tiny_clip(benchmark_dir, tiny_clip), _precomputed(benchmark_dir / "pre")
    out = benchmark_dir / "run"
    assert _run(bench, pre, out, capsys=capsys)[0] == 0
    video = out / RunFolder(out).records()[0].video
    video.unlink()
    code, _, err = run_main(rescore_main, out, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and f"{video}: the video of record" in err
    scored = benchmark_dir / "scored"  # as eval.score lays a folder out
    scored.mkdir()
    (scored / "run.json").write_text(json.dumps({"videos": "x", "metric_specs": {}}))
    (scored / "results.jsonl").write_text((out / "results.jsonl").read_text())
    code, _, err = run_main(rescore_main, scored, capsys=capsys)
    assert code == 2 and "written by eval.score" in err
    (scored / "run.json").write_text("{")
    code, _, err = run_main(rescore_main, scored, capsys=capsys)
    assert code == 2 and "not valid JSON" in err
    code, _, err = run_main(rescore_main, benchmark_dir / "nothing", capsys=capsys)
    assert code == 2 and "not a run directory" in err
