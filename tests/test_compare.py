"""eval.compare: the paired difference of two methods against scipy's paired t statistics."""

import json

import numpy as np
import pytest
from scipy import stats

from conftest import run_main
from eval.compare import main, paired


def _records(rng, n=25):
    out = []
    for i in range(n):
        base = rng.random()
        for method, shift in (("vmc", 0.2), ("t2v", 0.0)):
            out.append({"method": method, "case": f"c{i % 5}", "prompt": f"p{i}", "seed": 0,
                        "metrics": {"oracle_motion": base + shift + rng.normal(0, 0.05), "x": None},
                        "spec_ids": {"oracle_motion": "s1", "x": "s2"}})
    return out


def test_paired_difference_matches_scipy():
    records = _records(np.random.default_rng(0))
    row = paired(records, "vmc", "t2v", ["oracle_motion"]).iloc[0]
    a = np.array([r["metrics"]["oracle_motion"] for r in records if r["method"] == "vmc"])
    b = np.array([r["metrics"]["oracle_motion"] for r in records if r["method"] == "t2v"])
    d = a - b
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert row["n"] == 25 and row["mean_diff"] == pytest.approx(d.mean())
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row["significant"] and stats.ttest_rel(a, b).pvalue < 0.05


def test_cli_writes_the_table_and_rejects_unknown_methods(tmp_path, capsys):
    records = _records(np.random.default_rng(1))
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert run_main(main, tmp_path, "--methods", "vmc,t2v", capsys=capsys)[0] == 0
    assert (tmp_path / "compare_vmc_vs_t2v.csv").is_file()
    code, _, err = run_main(main, tmp_path, "--methods", "vmc,tav", capsys=capsys)
    assert code == 2 and "method 'tav' is not in this run" in err


def _replicated(rng, prompts=8, seeds=3):
    """Records where each prompt has its own level and its seeds only add small noise: seeds are replicates."""
    out = []
    for p in range(prompts):
        base = rng.random()
        for seed in range(seeds):
            for method, shift in (("vmc", 0.1 + 0.2 * rng.random()), ("t2v", 0.0)):
                out.append({"method": method, "case": f"c{p % 4}", "prompt": f"p{p}", "seed": seed,
                            "metrics": {"oracle_motion": base + shift + rng.normal(0, 0.02)},
                            "spec_ids": {"oracle_motion": "s1"}})
    return out


def _t_interval(x):
    x = np.asarray(x, dtype=np.float64)
    return stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))


@pytest.mark.parametrize("unit,n_units", [("prompt", 8), ("case", 4), ("video", 24)])
def test_the_interval_counts_units_not_videos(unit, n_units):
    records = _replicated(np.random.default_rng(2))
    value = {(r["method"], r["prompt"], r["seed"]): r["metrics"]["oracle_motion"] for r in records}
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
    vmc = [r for r in records if r["method"] == "vmc"]
    values = np.array([[r["metrics"]["oracle_motion"] for r in vmc if r["prompt"] == f"p{p}"] for p in range(8)])
    assert (row["n"], row["n_units"]) == (24, 8)
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(_t_interval(values.mean(1)))
    assert row["std"] == pytest.approx(values.std(ddof=1))


def test_scored_folders_pair_by_reference_and_prompt():
    """eval.score records have no case or seed: videos pair by (reference, prompt)."""
    rng = np.random.default_rng(4)
    records = [{"method": m, "prompt": f"p{i}", "reference": f"ref{i % 3}.mp4", "video": f"{m}/{i}.mp4",
                "metrics": {"oracle_motion": float(rng.random())}} for i in range(6) for m in ("a", "b")]
    row = paired(records, "a", "b", ["oracle_motion"]).iloc[0]
    d = [records[2 * i]["metrics"]["oracle_motion"] - records[2 * i + 1]["metrics"]["oracle_motion"] for i in range(6)]
    assert (row["n"], row["n_units"]) == (6, 6)
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(_t_interval(d))
    assert paired(records, "a", "b", ["oracle_motion"], unit="case").iloc[0]["n_units"] == 3
