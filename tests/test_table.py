"""eval.table: the paper's table (labels, arrows, bold best, one precision rule) and its --versus columns, which
must be eval.compare's numbers."""

import math

import numpy as np
import pytest

from conftest import run_main
from eval.compare import compare
from eval.record import Record
from eval.results import summarize
from eval.rundir import RunFolder
from eval.table import build, decimals, main, render, run_table

SPECS = {"oracle_motion": "s1", "motion_epe": "s2"}


def _records(rng, prompts=6, seeds=2):
    """vmc best on oracle_motion (↑), tav best on motion_epe (↓), t2v worst on both; random levels per prompt."""
    out = []
    for p in range(prompts):
        level = rng.random()
        for seed in range(seeds):
            for method, motion, epe in (("vmc", 0.3, 2.0), ("tav", 0.1, 1.0), ("t2v", 0.0, 3.0)):
                metrics = {"oracle_motion": float(np.clip(level * 0.5 + motion + rng.normal(0, 0.05), 0, 1)),
                           "motion_epe": float(epe + level + rng.normal(0, 0.2))}
                key = f"{method}|c{p % 3}|p{p}|{seed}"
                out.append(Record(key, method, f"p{p}", f"{key}.mp4", metrics=metrics, spec_ids=dict(SPECS),
                                  case=f"c{p % 3}", seed=seed))
    return out


def _md_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def test_markdown_has_labels_arrows_and_the_best_in_bold(tmp_path, capsys):
    records = _records(np.random.default_rng(0))
    RunFolder(tmp_path).replace(records)
    code, out, _ = run_main(main, tmp_path, "--format", "md", capsys=capsys)
    assert code == 0
    header, rows = _md_rows(out)
    assert header == ["Method", "Flow EPE (px) ↓", "Oracle motion ↑"]
    by = {r[0]: r for r in rows}
    assert by["vmc"][2].startswith("**") and not by["vmc"][1].startswith("**")
    assert by["tav"][1].startswith("**") and not by["t2v"][1].startswith("**")
    summary = summarize(records)
    for method, row in by.items():
        for col, metric in ((1, "motion_epe"), (2, "oracle_motion")):
            s = summary[(summary.method == method) & (summary.metric == metric)].iloc[0]
            d = decimals(summary[summary.metric == metric]["mean"], 3)
            assert row[col].strip("*") == f"{s['mean']:.{d}f} ± {(s.ci95_high - s.ci95_low) / 2:.{d}f}"


def test_latex_versus_gives_eval_compare_p_values(tmp_path, capsys):
    records = _records(np.random.default_rng(1))
    RunFolder(tmp_path).replace(records)
    code, out, _ = run_main(main, tmp_path, "--format", "latex", "--versus", "vmc", "--methods", "tav,t2v",
                            "--metrics", "oracle_motion,motion_epe", "--interval", "none", capsys=capsys)
    assert code == 0
    assert r"\toprule" in out and r"\midrule" in out and r"\bottomrule" in out
    lines = [line for line in out.splitlines() if line.endswith(r"\\")]
    header = [c.strip() for c in lines[0][:-2].split("&")]
    assert header == ["Method", r"Oracle motion $\uparrow$", r"$\Delta$", "p", r"Flow EPE (px) $\downarrow$",
                      r"$\Delta$", "p"]
    rows = {r.split("&")[0].strip(): [c.strip() for c in r[:-2].split("&")] for r in lines[1:]}
    assert list(rows) == ["vmc", "tav", "t2v"]  # the versus method first
    assert rows["vmc"][1].startswith(r"\textbf{") and rows["tav"][4].startswith(r"\textbf{")
    expected = compare(records, "vmc", ["tav", "t2v"], ["oracle_motion", "motion_epe"]).set_index(["metric", "b"])
    for method in ("tav", "t2v"):
        for metric, p_col in (("oracle_motion", 3), ("motion_epe", 6)):
            p = expected.loc[(metric, method), "p_holm"]
            assert rows[method][p_col] == ("$<$ 0.001" if p < 0.001 else f"{p:.3f}")
            diff = float(rows[method][p_col - 1])
            d = decimals(summarize(records).query("metric == @metric")["mean"], 3)
            assert diff == pytest.approx(round(expected.loc[(metric, method), "mean_diff"], d))
    assert rows["vmc"][2:4] == ["--", "--"]


def test_by_case_p_values_are_eval_compares_by_case():
    records = _records(np.random.default_rng(2), prompts=9)
    table = run_table(records, metrics=["oracle_motion"], versus="vmc", by_case=True)
    expected = compare(records, "vmc", ["tav", "t2v"], ["oracle_motion"], by_case=True)
    assert table.header[:2] == ["Case", "Method"] and len(table.rows) == 9
    case = None
    for row in table.rows:
        case = row[0].text or case
        if row[1].text != "vmc":
            p = expected.query("case == @case and b == @row[1].text")["p_holm"].iloc[0]
            assert row[-1].text == ("< 0.001" if p < 0.001 else f"{p:.3f}")


def test_precision_rule_intervals_and_csv():
    assert decimals([0.5412, 0.2], 3) == 3 and decimals([31.2], 3) == 1 and decimals([1234.0], 3) == 0
    records = _records(np.random.default_rng(3))
    summary = summarize(records)
    s = summary[(summary.method == "vmc") & (summary.metric == "oracle_motion")].iloc[0]
    table = build(summary, ["vmc"], ["oracle_motion"], interval="brackets")
    assert table.rows[0][1].text == f"{s['mean']:.3f} [{s.ci95_low:.3f}, {s.ci95_high:.3f}]"
    assert not table.rows[0][1].bold  # nothing to be best against
    csv = render(build(summary, interval="none"), "csv").splitlines()
    assert csv[0] == "Method,Flow EPE (px) ↓,Oracle motion ↑" and len(csv) == 4
    assert not math.isnan(float(csv[1].split(",")[1]))


def test_bad_names_are_one_line(tmp_path, capsys):
    RunFolder(tmp_path).replace(_records(np.random.default_rng(4)))
    code, out, err = run_main(main, tmp_path, "--format", "md", "--metrics", "oracle_motoin", capsys=capsys)
    assert code == 2 and "'oracle_motoin' not in this run" in err and not out
    code, _, err = run_main(main, tmp_path, "--format", "md", "--methods", "vmc,tva", capsys=capsys)
    assert code == 2 and "'tva' not in this run" in err
    code, _, err = run_main(main, tmp_path / "nowhere", "--format", "md", capsys=capsys)
    assert code == 2 and "no such file" in err
