"""Reading a run directory, and locating what its records point at: each video file and its reference clip.

`eval.run` stores videos relative to the run directory and names its benchmark manifest in run.json;
`eval.score` stores them relative to its `--videos` folder and keeps each reference path in the record.
"""

from __future__ import annotations

from pathlib import Path

from eval.errors import UserError, read_json
from eval.results import read_results


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
    """The file of a record's video (`config`: the run's run.json)."""
    base = Path(config["videos"]) if "videos" in config and "benchmark" not in config else Path(run_dir)
    path = Path(record["video"])
    return path if path.is_absolute() else base / path


class References:
    """record → its reference clip: the record's own `reference` (eval.score) or its case in the run's manifest,
    which is read once, on first need. Unknown references are a UserError naming the file that lacks them."""

    def __init__(self, run_dir: Path, config: dict):
        self.run_dir = Path(run_dir)
        self.manifest = (config.get("benchmark") or {}).get("manifest")
        self._cases = None

    def __call__(self, record: dict) -> Path:
        if record.get("reference"):
            return Path(record["reference"])
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
