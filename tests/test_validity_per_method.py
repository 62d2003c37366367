"""eval.validity --per-method: each method's agreement with the oracle on its own videos, and the reading note."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import run_main
from eval.record import Record
from eval.rundir import RunFolder
from eval.validity import main


def test_per_method_separates_what_pooling_confounds(tmp_path, capsys):
    """Within each method text_alignment rises with oracle_appearance, but the method that scores higher on
    CLIP scores lower on the oracle: pooled, the correlation is negative (Simpson's paradox)."""
    rng = np.random.default_rng(0)
    records = []
    for method, clip_shift, oracle_shift in (("a", 0.0, 0.5), ("b", 1.0, 0.0)):
        for p in range(20):
            truth = rng.random() * 0.5
            metrics = {"oracle_appearance": truth + oracle_shift,
                       "text_alignment": truth + clip_shift + rng.normal(0, 0.05)}
            key = f"{method}|c|p{p}|0"
            records.append(Record(key, method, f"p{p}", f"{key}.mp4", metrics=metrics, case="c", seed=0,
                                  spec_ids={k: "s" for k in metrics}))
    RunFolder(tmp_path).replace(records)
    code, out, _ = run_main(main, tmp_path, "--per-method", capsys=capsys)
    assert code == 0 and "How to read it" in out and "confounded by the method" in out
    pooled = pd.read_csv(tmp_path / "validity.csv").set_index("metric").loc["text_alignment"]
    assert pooled["spearman"] < 0
    per = pd.read_csv(tmp_path / "validity_per_method.csv")
    assert list(per.columns[:2]) == ["method", "metric"] and set(per["method"]) == {"a", "b"}
    for method, row in per.set_index("method").iterrows():
        mine = [r for r in records if r.method == method]
        expected = stats.spearmanr([r.metrics["text_alignment"] for r in mine],
                                   [r.metrics["oracle_appearance"] for r in mine]).statistic
        assert row["spearman"] == pytest.approx(expected, abs=1e-4) and row["spearman"] > 0.8
        assert row["n"] == 20 and row["ci_low"] <= row["spearman"] <= row["ci_high"]
