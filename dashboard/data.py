"""Reading run directories and human-study outputs for the dashboard (never recomputing a metric).

Everything is cached on (path, modification time), so a page switch or filter change re-reads nothing and a run
that is still being written shows its new videos on the next refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from eval.errors import UserError
from eval.metrics import all_fields
from eval.record import Record
from eval.rundir import RunFolder

HUMAN_FILES = ("table.csv", "exclusions.csv", "agreement.csv")


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    status: str    # "ok", "empty" (no scored videos yet) or "partial" (results but no summary.csv yet)
    message: str = ""
    methods: tuple[str, ...] | None = None  # the methods chosen in the sidebar (None: all)

    def keep(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of `frame` (a `method` column) of the chosen methods."""
        return frame if self.methods is None or frame.empty else frame[frame["method"].isin(self.methods)]


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def find_runs(root: Path) -> list[RunInfo]:
    """Run directories directly under `root` (or `root` itself), each with its status, the most recently
    written first."""
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
    return sorted(runs, key=lambda r: -max(_mtime(r.path / "results.jsonl"), _mtime(r.path / "run.json")))


def unreadable(run: RunInfo) -> str | None:
    """Why a run folder cannot be fully read (a bad line in results.jsonl, a broken run.json or summary.csv),
    in one line naming the file; None when it reads."""
    try:
        if (run.path / "run.json").exists():
            RunFolder(run.path).config
        load_records(run.path)
        if (run.path / "summary.csv").exists():
            load_summary(run.path)
    except UserError as e:
        return str(e)
    except (ValueError, OSError) as e:  # pandas' parser errors are ValueErrors
        return f"{run.path / 'summary.csv'}: not readable ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return None


@st.cache_data(show_spinner=False, max_entries=64)
def _summary(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path)


def load_summary(run: Path) -> pd.DataFrame:
    return _summary(str(run / "summary.csv"), _mtime(run / "summary.csv"))


@st.cache_data(show_spinner="reading results…", max_entries=32)
def _records(run: str, mtime: float) -> dict[str, Record]:
    return {r.key: r for r in RunFolder(run).records()}


def load_records(run: Path) -> dict[str, Record]:
    """The run's records by key (a run still being written: those complete so far)."""
    return _records(str(run), _mtime(run / "results.jsonl"))


@st.cache_data(show_spinner=False, max_entries=32)
def _table(run: str, mtime: float) -> pd.DataFrame:
    rows = []
    for r in _records(run, mtime).values():
        # eval.score's videos have no seed: shown as seed 0, so that they sort and group with eval.run's
        row = {"key": r.key, "method": r.method, "case": r.unit_case, "prompt": r.prompt,
               "seed": 0 if r.seed is None else r.seed}
        row.update({f"metric.{k}": v for k, v in r.metrics.items()})
        row.update({f"spec.{k}": v for k, v in r.spec_ids.items()})
        row.update({f"undefined.{k}": v for k, v in r.undefined.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def load_table(run: Path) -> pd.DataFrame:
    """The run's records flat: one row per video (by `key`), a column per metric, spec and undefined field."""
    return _table(str(run), _mtime(run / "results.jsonl"))


@st.cache_resource(show_spinner=False, max_entries=16)
def _folder(run: str, mtime: float) -> RunFolder:
    return RunFolder(run)  # reads run.json, and the manifest behind the references, once


def run_folder(run: Path) -> RunFolder:
    return _folder(str(run), _mtime(run / "run.json"))


def load_run_json(run: Path) -> dict:
    try:
        return run_folder(run).config
    except (OSError, UserError):
        return {}


def reference_path(run: Path, record: Record) -> Path | None:
    """The reference clip of a record, or None when the run no longer says where it is (a gallery still shows
    the outputs)."""
    try:
        return run_folder(run).reference(record)
    except Exception:  # a run without a manifest, or a moved or edited one
        return None


def video_path(run: Path, record: Record) -> Path:
    return run_folder(run).video(record)


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
