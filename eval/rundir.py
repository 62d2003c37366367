"""A run directory (`RunFolder`): its run.json, its records, its one writer at a time, and the files its records
point at (each video file, its reference clip, the benchmark manifest).

Records are appended to results.jsonl with a single write() on an O_APPEND descriptor and fsync'd, so a killed
process leaves at most one torn last line; readers skip it and the next append cuts it off.

Paths are stored relative to the run directory (run.json says `"paths": "run"`), so a folder opens from any
working directory and after being moved together with what it points at; run.json also keeps the folder's
absolute location when it was written, so a folder moved alone still finds files left where they were.
Folders written before that (no `paths` key) hold paths as given on the command line, relative to the
directory the command ran in, and are read as before.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from eval.errors import UserError, read_json
from eval.record import Record
from eval.results import atomic_write_text

LOCK_FILE = ".writer.lock"
LOCK_FD_ENV = "VMC_RUN_LOCK_FD"  # set by eval.run for its --jobs workers: the lock their launcher holds
RESULTS = "results.jsonl"


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


class RunFolder:
    """A run directory as eval.run and eval.score write it. Reading records needs only results.jsonl; `config`
    (run.json) is read once, on first need, and so is the benchmark manifest behind `reference`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.run_json = self.path / "run.json"
        self.results = self.path / RESULTS
        self._config: dict | None = None
        self._cases: dict | None = None  # case id → reference clip, from the manifest
        self._mended: set[str] = set()  # results files whose torn tail this object has cut

    @classmethod
    def existing(cls, path: str | os.PathLike) -> RunFolder:
        """A folder that eval.run or eval.score wrote, or a UserError for any other (no run.json)."""
        folder = cls(path)
        if not folder.run_json.is_file():
            raise UserError(f"{folder.path}: not a run directory (no run.json); make one with python -m eval.run")
        return folder

    @property
    def config(self) -> dict:
        if self._config is None:
            self._config = read_json(self.run_json)
        return self._config

    def write_config(self, config: dict):
        atomic_write_text(self.run_json, json.dumps(config, indent=2, sort_keys=True) + "\n")
        self._config = None

    def lock(self) -> WriterLock:
        return WriterLock(self.path)

    # records

    def records(self, name: str = RESULTS) -> list[Record]:
        """The complete records of a results file of the folder (results.jsonl, or a part file: `name`), one per
        key (the first: a folder that two runs wrote at once, before runs took the folder's lock, may hold a key
        twice); a torn last line from a killed writer is skipped."""
        path = self.path / name
        if not path.exists():
            return []
        records, seen = [], set()
        data = path.read_bytes()
        for i, line in enumerate(data.split(b"\n")):
            if not line.strip():
                continue
            try:
                record = Record.from_json(json.loads(line))
            except json.JSONDecodeError:
                if data.endswith(b"\n") or i != data.count(b"\n"):
                    raise UserError(f"{path}: line {i + 1} is not valid JSON (only a torn last line is tolerated)") \
                        from None
                continue
            except TypeError as e:  # not an object, or one without a record's keys
                raise UserError(f"{path}: line {i + 1} is not a record ({e})") from None
            if record.key not in seen:
                seen.add(record.key)
                records.append(record)
        return records

    def scored(self) -> list[Record]:
        """The records of results.jsonl, or a UserError when there are none yet."""
        records = self.records()
        if not records:
            raise UserError(f"{self.results}: no scored videos yet")
        return records

    def append(self, records: list[Record], name: str = RESULTS):
        """Append complete lines with one write() and one fsync; the first append to a file cuts a torn last line
        (no newline) that a killed writer left."""
        path = self.path / name
        if name not in self._mended:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size:
                with open(path, "rb+") as f:
                    data = f.read()
                    if not data.endswith(b"\n"):
                        f.truncate(data.rfind(b"\n") + 1)
            self._mended.add(name)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _lines(records).encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, records: list[Record], name: str = RESULTS):
        """Replace a results file with `records`, atomically."""
        atomic_write_text(self.path / name, _lines(records))

    # paths (see the module's docstring)

    def path_fields(self) -> dict:
        """The run.json fields that say how its paths are stored."""
        return {"paths": "run", "written_at": str(self.path.resolve())}

    def stored_path(self, path: str | os.PathLike) -> str:
        """How a path is written into run.json or a record: relative to the run directory."""
        return os.path.relpath(Path(path).resolve(), self.path.resolve())

    def resolve(self, stored: str) -> Path:
        """The file a stored path names."""
        path = Path(stored)
        if path.is_absolute() or self.config.get("paths") != "run":
            return path
        here = self.path / path
        if not here.exists() and self.config.get("written_at"):
            # lexically: the folder is no longer there for the system to resolve `..` from (both paths were
            # resolved when stored, so no link stands in between)
            there = Path(os.path.normpath(Path(self.config["written_at"]) / path))
            if there.exists():
                return there
        return here

    @property
    def manifest(self) -> Path | None:
        """The benchmark manifest an eval.run folder was made from, or None."""
        manifest = (self.config.get("benchmark") or {}).get("manifest")
        return self.resolve(manifest) if manifest else None

    def video(self, record: Record) -> Path:
        """The file of a record's video: eval.run's are relative to the run directory, eval.score's to its
        --videos folder, which run.json names."""
        path = Path(record.video)
        if path.is_absolute():
            return path
        if "videos" in self.config and "benchmark" not in self.config:
            return self.resolve(self.config["videos"]) / path
        return self.path / path

    def reference(self, record: Record) -> Path:
        """A record's reference clip: its own `reference` (eval.score) or its case's in the run's manifest.
        Unknown references are a UserError naming the file that lacks them."""
        if record.reference:
            return self.resolve(record.reference)
        if self._cases is None:
            if not self.manifest:
                raise UserError(f"{self.run_json}: names no benchmark manifest, so the reference clips cannot be "
                                f"found")
            from eval.manifest import load_benchmark

            self._cases = {c.id: c.reference for c in load_benchmark(self.manifest, check_files=False).cases}
        if record.case not in self._cases:
            raise UserError(f"{self.manifest}: has no case '{record.case}' (used in {self.results})")
        return self._cases[record.case]


def _lines(records: list[Record]) -> str:
    """The results.jsonl text of `records`: one sorted-key JSON object a line."""
    return "".join(json.dumps(r.to_json(), sort_keys=True, allow_nan=False) + "\n" for r in records)
