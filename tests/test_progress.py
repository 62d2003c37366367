"""eval.run's progress tells the truth: adaptation steps reach the bar, the ETA counts adaptations still to come,
and the per-rank result files an interrupted multi-process run leaves are merged when the same command resumes."""

import io

import pytest
from tqdm import tqdm

import eval.progress as progress
from conftest import mini_with_tiny_clip, run_main
from eval.rundir import RunFolder


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", c)
    return c


def _bar(total):
    return tqdm(total=total, file=io.StringIO(), bar_format=progress.BAR_FORMAT, mininterval=0)


def test_eta_counts_adaptations_and_is_a_bound_while_a_method_is_unmeasured(clock):
    pending = [("vmc", "c1")] * 2 + [("vmc", "c2")] * 2 + [("t2v", "c1")]
    bar = _bar(len(pending))
    p = progress.RunProgress(bar, pending)
    try:
        with p.adapting("vmc", "c1"):
            progress.report("vmc adaptation", 3, 10)
            clock.now = 6.0
            p.show()
            assert "vmc / c1: adapting vmc adaptation 3/10" in bar.postfix
            assert p.eta() == (pytest.approx(14.0), True)  # 6 s for 3 of 10 steps; t2v not measured yet
            clock.now = 20.0
        p.item_done("vmc", "c1", 2.0)
        # left: vmc's second adaptation (20 s) and three vmc videos (2 s each); t2v unknown: a lower bound
        assert p.eta() == (pytest.approx(26.0), True)
        assert bar.postfix.endswith("eta ≥ 00:26") and bar.n == 1
        p.item_done("vmc", "c1", 2.0)
        with p.adapting("vmc", "c2"):
            clock.now = 30.0
        for _ in range(2):
            p.item_done("vmc", "c2", 4.0)
        with p.adapting("t2v", "c1"):
            clock.now = 31.0
        assert p.eta() == (pytest.approx(0.0), True)
        p.item_done("t2v", "c1", 1.0)
        assert p.eta() == (0.0, False) and bar.postfix.endswith("eta 00:00")
    finally:
        p.close()


def test_inner_loops_report_their_steps_even_when_their_bars_are_hidden(monkeypatch, clock):
    from eval.progress import inner_bar

    monkeypatch.setattr(progress, "_inner_bars", {"shown": False})  # as VMC_INNER_BARS=0 makes a command do
    p = progress.RunProgress(_bar(1), [("vmc", "c1")])
    try:
        with p.adapting("vmc", "c1"):
            for k in inner_bar(range(3), "vmc adaptation"):
                assert p.step == (None if k == 0 else ("vmc adaptation", k, 3))
            assert p.step == ("vmc adaptation", 3, 3)
    finally:
        p.close()
    assert progress._listener is None  # nothing listens outside an adaptation
    assert list(inner_bar(range(2), "keyframes")) == [0, 1]


def test_resume_merges_the_rank_files_an_interrupted_run_left(benchmark_dir, tiny_clip, capsys):
    from eval.run import main

    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = ["--methods", "reference", "--benchmark", bench, "--out", out, "--metrics", "clip", "--jobs", "1"]
    assert run_main(main, *args, capsys=capsys)[0] == 0
    folder = RunFolder(out)
    records = folder.records()
    assert len(records) == 3
    # as two workers stopped by Ctrl-C leave them: their part files, one record twice, no results.jsonl
    folder.replace(records[:2], "results.rank0.jsonl")
    folder.replace(records[1:], "results.rank1.jsonl")
    folder.results.unlink()
    (out / "summary.csv").unlink()
    videos = {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*.mp4")}
    code, stdout, _ = run_main(main, *args, capsys=capsys)
    assert code == 0 and "3 scored videos" in stdout
    assert [r.key for r in folder.records()] == [r.key for r in records]
    assert not list(out.glob("results.rank*.jsonl")) and (out / "summary.csv").is_file()
    assert {p: p.stat().st_mtime_ns for p in videos} == videos  # nothing made again
