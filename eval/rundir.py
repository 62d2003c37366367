"""A run directory: its one writer at a time, reading it, and locating what its records point at (each video
file, its reference clip, the benchmark manifest).

Paths are stored relative to the run directory (run.json says `"paths": "run"`), so a folder opens from any
working directory and after being moved together with what it points at; run.json also keeps the folder's
absolute location when it was written, so a folder moved alone still finds files left where they were.
Folders written before that (no `paths` key) hold paths as given on the command line, relative to the
directory the command ran in, and are read as before.
"""

from __future__ import annotations

import fcntl
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from eval.errors import UserError, read_json
from eval.results import read_results

LOCK_FILE = ".writer.lock"
LOCK_FD_ENV = "VMC_RUN_LOCK_FD"  # set by eval.run for its --jobs workers: the lock their launcher holds


class WriterLock:
    """One writer per run folder: an exclusive `flock` on RUN_DIR/.writer.lock, which the operating system
    drops when the holder dies (so a `kill -9` never leaves a folder stuck). A process that starts workers
    lends them its descriptor: the lock is theirs too and lasts while any of them lives, so orphaned workers
    of a killed launcher still keep a second run out. Under torchrun, rank 0 holds it for all ranks."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> "WriterLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "a process"
            os.close(fd)
            raise UserError(f"{self.path.parent}: another process is writing this run folder ({holder}); wait "
                            "for it to finish or stop it (finished items are kept), or use another --out") from None
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        text = f"pid {os.getpid()} on {platform.node()} since {since}: {' '.join(sys.argv)}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode()[:4000], 0)
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def held_by_launcher() -> bool:
    """True in a worker whose launcher holds the run folder's lock for it (see WriterLock)."""
    fd = os.environ.get(LOCK_FD_ENV)
    if not fd:
        return False
    try:
        os.fstat(int(fd))
    except (OSError, ValueError):
        return False
    return True


def path_fields(run_dir: Path) -> dict:
    """The run.json fields that say how its paths are stored (see the module's docstring)."""
    return {"paths": "run", "written_at": str(Path(run_dir).resolve())}


def stored_path(run_dir: Path, path: Path) -> str:
    """How a path is written into run.json or a record: relative to the run directory."""
    return os.path.relpath(Path(path).resolve(), Path(run_dir).resolve())


def resolve(run_dir: Path, config: dict, stored: str) -> Path:
    """The file a stored path names (see the module's docstring)."""
    path = Path(stored)
    if path.is_absolute() or config.get("paths") != "run":
        return path
    here = Path(run_dir) / path
    if not here.exists() and config.get("written_at"):
        there = Path(config["written_at"]) / path
        if there.exists():
            return there
    return here


def manifest_path(run_dir: Path, config: dict) -> Path | None:
    """The benchmark manifest an eval.run folder was made from, or None."""
    manifest = (config.get("benchmark") or {}).get("manifest")
    return resolve(run_dir, config, manifest) if manifest else None


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """(run.json, the records of results.jsonl) of a run directory, or a UserError naming what is missing."""
    run_dir = Path(run_dir)
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise UserError(f"{run_dir}: not a run directory (no run.json); make one with python -m eval.run")
    config = read_json(run_json)
    records = read_results(run_dir / "results.jsonl")
    if not records:
        raise UserError(f"{run_dir / 'results.jsonl'}: no scored videos yet")
    return config, records


def video_path(run_dir: Path, config: dict, record: dict) -> Path:
    """The file of a record's video (`config`: the run's run.json): eval.run's are relative to the run
    directory, eval.score's to its --videos folder, which run.json names."""
    path = Path(record["video"])
    if path.is_absolute():
        return path
    if "videos" in config and "benchmark" not in config:
        return resolve(run_dir, config, config["videos"]) / path
    return Path(run_dir) / path


class References:
    """record → its reference clip: the record's own `reference` (eval.score) or its case in the run's manifest,
    which is read once, on first need. Unknown references are a UserError naming the file that lacks them."""

    def __init__(self, run_dir: Path, config: dict):
        self.run_dir = Path(run_dir)
        self.config = config
        self.manifest = manifest_path(run_dir, config)
        self._cases = None

    def __call__(self, record: dict) -> Path:
        if record.get("reference"):
            return resolve(self.run_dir, self.config, record["reference"])
        if self._cases is None:
            if not self.manifest:
                raise UserError(f"{self.run_dir / 'run.json'}: names no benchmark manifest, so the reference clips "
                                f"cannot be found")
            from eval.manifest import load_benchmark

            self._cases = {c.id: c.reference for c in load_benchmark(self.manifest, check_files=False).cases}
        if record.get("case") not in self._cases:
            raise UserError(f"{self.manifest}: has no case '{record.get('case')}' (used in "
                            f"{self.run_dir / 'results.jsonl'})")
        return self._cases[record["case"]]
