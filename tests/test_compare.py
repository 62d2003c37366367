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
