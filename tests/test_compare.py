"""eval.compare: paired differences of methods against scipy's paired t statistics, Holm by hand."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import run_main
from eval.compare import compare, main, paired
from eval.errors import UserError
from eval.record import Record
from eval.rundir import RunFolder


def _record(method, prompt, metrics, case=None, seed=None, **fields):
    key = f"{method}|{case}|{prompt}|{seed}"
    return Record(key, method, prompt, f"{key}.mp4", metrics=metrics, case=case, seed=seed, **fields)


def _records(rng, n=25):
    out = []
    for i in range(n):
        base = rng.random()
        for method, shift in (("vmc", 0.2), ("t2v", 0.0)):
            out.append(_record(method, f"p{i}", {"oracle_motion": base + shift + rng.normal(0, 0.05), "x": None},
                               f"c{i % 5}", 0, spec_ids={"oracle_motion": "s1", "x": "s2"}))
    return out


def test_paired_difference_matches_scipy():
    records = _records(np.random.default_rng(0))
    row = paired(records, "vmc", "t2v", ["oracle_motion"]).iloc[0]
    a = np.array([r.metrics["oracle_motion"] for r in records if r.method == "vmc"])
    b = np.array([r.metrics["oracle_motion"] for r in records if r.method == "t2v"])
    d = a - b
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert row["n"] == 25 and row["mean_diff"] == pytest.approx(d.mean())
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue) and row["p_holm"] == row["p"]
    assert row["significant"] and row["p"] < 0.05


def test_cli_writes_the_table_and_rejects_unknown_methods(tmp_path, capsys):
    RunFolder(tmp_path).replace(_records(np.random.default_rng(1)))
    assert run_main(main, tmp_path, "--methods", "vmc,t2v", capsys=capsys)[0] == 0
    assert (tmp_path / "compare_vmc_vs_t2v.csv").is_file()
    code, _, err = run_main(main, tmp_path, "--methods", "vmc,tav", capsys=capsys)
    assert code == 2 and "method 'tav' is not in this run" in err
    for bad in ("vmc", "vmc,vmc"):
        code, _, err = run_main(main, tmp_path, "--methods", bad, capsys=capsys)
        assert code == 2 and "two or more different labels" in err


def test_several_methods_are_holm_corrected_per_metric(tmp_path, capsys):
    """vmc against tav (a small gain) and t2v (a large one) on two metrics: each p is scipy's one-sample t-test
    over the prompts' mean differences, and Holm's correction of each metric's pair is worked out by hand."""
    rng = np.random.default_rng(5)
    records = []
    for p in range(10):
        level = rng.random()
        for seed in range(2):
            for method, shift in (("vmc", 0.0), ("tav", -0.03), ("t2v", -0.3)):
                metrics = {m: level + shift * k + rng.normal(0, 0.1) for k, m in ((1, "m1"), (2, "m2"))}
                records.append(_record(method, f"p{p}", metrics, f"c{p % 5}", seed, spec_ids={"m1": "s", "m2": "s"}))
    RunFolder(tmp_path).replace(records)
    assert run_main(main, tmp_path, "--methods", "vmc,tav,t2v", capsys=capsys)[0] == 0
    table = pd.read_csv(tmp_path / "compare_vmc_vs_tav+t2v.csv")
    assert len(table) == 4 and set(table["b"]) == {"tav", "t2v"}
    value = {(r.method, r.prompt, r.seed, m): v for r in records for m, v in r.metrics.items()}
    for metric in ("m1", "m2"):
        rows = table[table["metric"] == metric].set_index("b")
        p = {}
        for b in ("tav", "t2v"):
            d = [np.mean([value["vmc", f"p{i}", s, metric] - value[b, f"p{i}", s, metric] for s in range(2)])
                 for i in range(10)]
            p[b] = stats.ttest_1samp(d, 0).pvalue
            assert rows.loc[b, "p"] == pytest.approx(p[b], rel=1e-4)
        low, high = sorted(p, key=p.get)
        assert rows.loc[low, "p_holm"] == pytest.approx(min(1, 2 * p[low]), rel=1e-4)
        assert rows.loc[high, "p_holm"] == pytest.approx(min(1, max(2 * p[low], p[high])), rel=1e-4)
        assert list(rows["significant"]) == list(rows["p_holm"] < 0.05)
    assert table.query("b == 't2v'")["significant"].all()


def _replicated(rng, prompts=8, seeds=3):
    """Records where each prompt has its own level and its seeds only add small noise: seeds are replicates."""
    out = []
    for p in range(prompts):
        base = rng.random()
        for seed in range(seeds):
            for method, shift in (("vmc", 0.1 + 0.2 * rng.random()), ("t2v", 0.0)):
                out.append(_record(method, f"p{p}", {"oracle_motion": base + shift + rng.normal(0, 0.02)},
                                   f"c{p % 4}", seed, spec_ids={"oracle_motion": "s1"}))
    return out


def _t_interval(x):
    x = np.asarray(x, dtype=np.float64)
    return stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))


@pytest.mark.parametrize("unit,n_units", [("prompt", 8), ("case", 4), ("video", 24)])
def test_the_interval_counts_units_not_videos(unit, n_units):
    records = _replicated(np.random.default_rng(2))
    value = {(r.method, r.prompt, r.seed): r.metrics["oracle_motion"] for r in records}
    diff = np.array([[value["vmc", f"p{p}", s] - value["t2v", f"p{p}", s] for s in range(3)] for p in range(8)])
    per_unit = {"prompt": diff.mean(1), "case": diff.reshape(2, 4, 3).transpose(1, 0, 2).reshape(4, 6).mean(1),
                "video": diff.ravel()}[unit]
    row = paired(records, "vmc", "t2v", ["oracle_motion"], unit=unit).iloc[0]
    assert (row["n"], row["n_units"], row["unit"]) == (24, n_units, unit)
    assert row["mean_diff"] == pytest.approx(diff.mean())
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(_t_interval(per_unit))


def test_summary_interval_is_over_prompts_and_std_over_videos():
    from eval.results import summarize

    records = _replicated(np.random.default_rng(3))
    row = summarize(records).query("method == 'vmc'").iloc[0]
    vmc = [r for r in records if r.method == "vmc"]
    values = np.array([[r.metrics["oracle_motion"] for r in vmc if r.prompt == f"p{p}"] for p in range(8)])
    assert (row["n"], row["n_units"]) == (24, 8)
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(_t_interval(values.mean(1)))
    assert row["std"] == pytest.approx(values.std(ddof=1))


def test_scored_folders_pair_by_reference_and_prompt():
    """eval.score records have no case or seed: videos pair by (reference, prompt)."""
    rng = np.random.default_rng(4)
    records = [_record(m, f"p{i}", {"oracle_motion": float(rng.random())}, reference=f"ref{i % 3}.mp4")
               for i in range(6) for m in ("a", "b")]
    row = paired(records, "a", "b", ["oracle_motion"]).iloc[0]
    d = [records[2 * i].metrics["oracle_motion"] - records[2 * i + 1].metrics["oracle_motion"] for i in range(6)]
    assert (row["n"], row["n_units"]) == (6, 6)
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(_t_interval(d))
    assert paired(records, "a", "b", ["oracle_motion"], unit="case").iloc[0]["n_units"] == 3


def _holm_by_hand(p):
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_by_case_pairs_within_each_case_and_corrects_over_cases(tmp_path, capsys):
    records = _replicated(np.random.default_rng(6))
    table = compare(records, "vmc", ["t2v"], ["oracle_motion"], "prompt", by_case=True)
    assert list(table["case"]) == ["c0", "c1", "c2", "c3"] and (table["n_units"] == 2).all()
    p = []
    for _, row in table.iterrows():
        alone = paired([r for r in records if r.case == row["case"]], "vmc", "t2v", ["oracle_motion"]).iloc[0]
        expected = (6, alone["mean_diff"], alone["ci95_low"])
        assert (row["n"], row["mean_diff"], row["ci95_low"]) == pytest.approx(expected)
        p.append(alone["p"])
    assert list(table["p_holm"]) == pytest.approx(_holm_by_hand(p))
    RunFolder(tmp_path).replace(records)
    assert run_main(main, tmp_path, "--methods", "vmc,t2v", "--by-case", capsys=capsys)[0] == 0
    assert len(pd.read_csv(tmp_path / "compare_vmc_vs_t2v_by_case.csv")) == 4
    code, _, err = run_main(main, tmp_path, "--methods", "vmc,t2v", "--by-case", "--unit", "case", capsys=capsys)
    assert code == 2 and "--by-case pairs within each case" in err
    apart = [replace(r, method="x") if r.method == "t2v" and r.case in ("c0", "c1") else r for r in records]
    apart = [r for r in apart if not (r.method == "vmc" and r.case in ("c0", "c1"))]
    with pytest.raises(UserError, match="no case has videos of both vmc and any of x"):
        compare(apart, "vmc", ["x"], ["oracle_motion"], by_case=True)
