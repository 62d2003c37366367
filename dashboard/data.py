"""Reading run directories and human-study outputs for the dashboard (never recomputing a metric).

Everything is cached on (path, modification time), so a page switch or filter change re-reads nothing and a run
that is still being written shows its new videos on the next refresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from eval.metrics import all_fields
from eval.rundir import References, video_path as record_video_path

HUMAN_FILES = ("table.csv", "exclusions.csv", "agreement.csv")


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    status: str    # "ok", "empty" (no scored videos yet) or "partial" (results but no summary.csv yet)
    message: str = ""


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def find_runs(root: Path) -> list[RunInfo]:
    """Run directories directly under `root` (or `root` itself), each with its status."""
    if not root.is_dir():
        return []
    candidates = [root] if (root / "run.json").exists() or (root / "results.jsonl").exists() else []
    candidates += sorted(p for p in root.iterdir() if p.is_dir() and ((p / "run.json").exists() or
                                                                       (p / "results.jsonl").exists()))
    runs = []
    for p in candidates:
        name = p.name if p != root else root.name
        results, summary = p / "results.jsonl", p / "summary.csv"
        if not results.exists() or results.stat().st_size == 0:
            runs.append(RunInfo(name, p, "empty", "no scored videos yet (results.jsonl is missing or empty)"))
        elif not summary.exists():
            runs.append(RunInfo(name, p, "partial", "summary.csv is not written yet; the run may still be going"))
        else:
            runs.append(RunInfo(name, p, "ok"))
    return runs


@st.cache_data(show_spinner=False, max_entries=64)
def _summary(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path)


def load_summary(run: Path) -> pd.DataFrame:
    return _summary(str(run / "summary.csv"), _mtime(run / "summary.csv"))


@st.cache_data(show_spinner="reading results…", max_entries=32)
def _records(path: str, mtime: float) -> tuple[pd.DataFrame, dict]:
    """Flat records (one row per video, a column per metric) and the per-video details by row key."""
    rows, details = [], {}
    with open(path, "rb") as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of a run still being written
            key = r.get("key") or f"{r['method']}|{r.get('case')}|{r['prompt']}|{r.get('seed', 0)}"
            if key in details:
                continue  # a key written twice (two writers at once, before runs took the folder's lock): once
            row = {"key": key,
                   "method": r["method"], "case": r.get("case") or "", "prompt": r["prompt"],
                   "seed": r.get("seed", 0), "video": r.get("video", ""), "reference": r.get("reference") or ""}
            row.update({f"metric.{k}": v for k, v in r.get("metrics", {}).items()})
            row.update({f"spec.{k}": v for k, v in r.get("spec_ids", {}).items()})
            row.update({f"undefined.{k}": v for k, v in r.get("undefined", {}).items()})
            rows.append(row)
            details[row["key"]] = r.get("details", {})
    return pd.DataFrame(rows), details


def load_records(run: Path) -> tuple[pd.DataFrame, dict]:
    return _records(str(run / "results.jsonl"), _mtime(run / "results.jsonl"))


@st.cache_data(show_spinner=False, max_entries=32)
def _run_json(path: str, mtime: float) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def load_run_json(run: Path) -> dict:
    return _run_json(str(run / "run.json"), _mtime(run / "run.json"))


@st.cache_resource(show_spinner=False, max_entries=16)
def _references(run: str, mtime: float) -> References:
    return References(Path(run), _run_json(str(Path(run) / "run.json"), mtime))


def reference_path(run: Path, record: pd.Series) -> Path | None:
    """The reference clip of a record, or None when the run no longer says where it is (a gallery still shows
    the outputs)."""
    try:
        return _references(str(run), _mtime(run / "run.json"))(record)
    except Exception:  # a run without a manifest, or a moved or edited one
        return None


def video_path(run: Path, record: pd.Series) -> Path:
    return record_video_path(run, load_run_json(run), record)


def find_human_studies(paths: list[Path]) -> list[Path]:
    """Human-study result folders (written by `python -m human_study aggregate`) at or below the given folders."""
    return [Path(p) for p in _find_human_studies(tuple(str(p) for p in paths))]


@st.cache_data(show_spinner=False, ttl=30)  # a walk over galleries of videos: not on every rerun
def _find_human_studies(paths: tuple[str, ...]) -> list[str]:
    paths = [Path(p) for p in paths]
    found = []
    for root in paths:
        if not root.is_dir():
            continue
        for table in sorted(root.glob("**/table.csv")):
            if all((table.parent / f).exists() for f in HUMAN_FILES):
                found.append(str(table.parent))
    return list(dict.fromkeys(found))


@st.cache_data(show_spinner=False, max_entries=16)
def _human(folder: str, mtime: float) -> dict:
    out = {}
    for name in ("table", "exclusions", "agreement", "tests", "differences", "answers"):
        path = Path(folder) / f"{name}.csv"
        out[name] = pd.read_csv(path) if path.exists() else pd.DataFrame()
    return out


def load_human(folder: Path) -> dict:
    return _human(str(folder), _mtime(folder / "table.csv"))


def metric_sort_key(metric: str) -> tuple:
    base = metric.split(" ")[0]
    if base.startswith("protocol."):
        return (2, base)
    order = list(all_fields())
    return (0, order.index(base)) if base in order else (1, base)
