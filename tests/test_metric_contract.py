"""One metric contract: every field declares its direction, range and meaning; a metric registered by another
package through the `vmc_suite.metrics` entry point is computed, summarised, tabled, compared, validated and
charted with no other change; --metrics selects what runs."""

import textwrap
from dataclasses import replace

import pytest

from conftest import mini_with_tiny_clip, run_main
from dashboard.views.charts import lower_is_better
from eval.compare import compare
from eval.metrics import BUILTIN, Field, all_fields, available_metrics, field_info
from eval.results import format_table, summarize
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from eval.validity import validity

PLUGIN = '''
import numpy as np

from eval.metrics.base import Field, Metric


class DarknessMetric(Metric):
    """255 minus the mean pixel value: a stand-in for a package's own metric."""

    name = "darkness"
    fields = {"darkness": Field("255 minus the mean pixel value", higher_is_better=False, range=(0.0, 255.0),
                                checked_by="oracle_appearance")}

    def spec(self):
        return {"formula": "255 - mean(frames)", "dtype": "float64"}

    def score(self, sample):
        return {"darkness": 255.0 - float(np.asarray(sample.frames, np.float64).mean())}, {}
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed package (a module and its dist-info on sys.path) that registers the metric `darkness`."""
    site = tmp_path / "site"
    (site / "darkness_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "darkness_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (site / "darkness_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: darkness-plugin\nVersion: 1.0\n")
    (site / "darkness_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[vmc_suite.metrics]\ndarkness = darkness_plugin:DarknessMetric\n")
    monkeypatch.syspath_prepend(str(site))
    available_metrics.cache_clear()
    yield
    monkeypatch.undo()
    available_metrics.cache_clear()


def test_every_builtin_field_declares_direction_range_and_meaning():
    fields = all_fields()
    assert list(fields)[:3] == ["text_alignment", "clip_score", "temporal_consistency"]  # the paper's first
    for name, f in fields.items():
        assert isinstance(f, Field) and f.meaning and f.direction in ("higher", "lower")
        assert f.range[0] < f.range[1], name
    assert field_info("motion_epe").direction == "lower" and field_info("motion_fidelity").direction == "higher"
    assert field_info("protocol.train_s") is None
    assert {f.checked_by for f in fields.values()} == {None, "oracle_appearance", "oracle_motion"}
    assert set(BUILTIN) == {"clip", "motion", "tracks", "oracle", "tracks_mtbench", "dino"}


def test_a_registered_metric_appears_everywhere(plugin, benchmark_dir, tiny_clip, capsys):
    assert "darkness" in available_metrics() and field_info("darkness").direction == "lower"
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    code, printed, err = run_main(run_main_cli, "--methods", "reference", "--benchmark", bench, "--out", out,
                                  capsys=capsys)
    assert code == 0, err
    records = RunFolder(out).records()
    for r in records:
        assert 0 <= r.metrics["darkness"] <= 255 and r.spec_ids["darkness"]
        assert {"text_alignment", "motion_epe", "motion_fidelity"} <= set(r.metrics)
    assert "darkness ↓" in printed and "text_alignment ↑" in printed and "motion_epe ↓" in printed

    # the summary's intervals are clipped to the declared range
    darker = [replace(r, metrics={**r.metrics, "darkness": 255.0 - 1e-3 * i}) for i, r in enumerate(records)]
    row = summarize(darker).set_index("metric").loc["darkness"]
    assert row.ci95_high <= 255.0 and "[" in format_table(summarize(darker), ["darkness"])

    # eval.compare says which way is better; eval.validity pairs the field with the oracle it names
    other = [replace(r, method="other", key=r.key.replace("reference", "other", 1),
                     metrics={**r.metrics, "darkness": r.metrics["darkness"] + 5.0, "oracle_appearance": 0.5})
             for r in records]
    table = compare(records + other, "reference", ["other"]).set_index("metric")
    assert table.loc["darkness", "direction"] == "lower" and table.loc["darkness", "better"] == "reference"
    assert table.loc["motion_epe", "direction"] == "lower"
    shifted = [replace(r, metrics={**r.metrics, "oracle_appearance": float(i % 3)}) for i, r in enumerate(records)]
    assert "darkness" in set(validity(shifted, resamples=10)["metric"])
    assert lower_is_better("darkness") and lower_is_better("motion_epe (spec 1)") and not lower_is_better("clip_score")


def test_metrics_option_selects_what_is_computed(benchmark_dir, tiny_clip, capsys):
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = ["--methods", "reference", "--benchmark", bench, "--out", out]
    assert run_main(run_main_cli, *args, "--metrics", "motion,tracks", capsys=capsys)[0] == 0
    fields = {k for r in RunFolder(out).records() for k in r.metrics}
    assert fields == {"motion_direction_cos", "motion_epe", "motion_trajectory_cos", "motion_fidelity",
                      "motion_fidelity_dmt"}
    code, _, err = run_main(run_main_cli, *args, "--metrics", "motion,sharpness", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "'sharpness'" in err and "clip, motion, tracks, oracle" in err



def test_a_folder_keeps_its_metric_set(benchmark_dir, tiny_clip, capsys):
    """A folder made with fewer metrics (as before the tracks metric existed) resumes with the same --metrics
    and refuses the default set, pointing at eval.rescore."""
    bench = mini_with_tiny_clip(benchmark_dir, tiny_clip)
    out = benchmark_dir / "run"
    args = ["--methods", "reference", "--benchmark", bench, "--out", out]
    assert run_main(run_main_cli, *args, "--seeds", "0", "--metrics", "clip,motion", capsys=capsys)[0] == 0
    code, _, err = run_main(run_main_cli, *args, "--seeds", "0,1", capsys=capsys)
    assert code == 2 and "other metric specs" in err and "eval.rescore" in err
    assert run_main(run_main_cli, *args, "--seeds", "0,1", "--metrics", "clip,motion", capsys=capsys)[0] == 0
    assert {r.seed for r in RunFolder(out).records()} == {0, 1}
