"""The run engine behind `python -m eval.run`: method × case × target prompt × seed → video → scores.

Layout of a run directory: run.json, videos/<method>/<case>/<prompt-stem>__s<seed>.mp4 (eval.naming; each with
a <prompt-stem>__s<seed>.json beside it holding its generation time), results.jsonl, summary.csv. Every
finished item is on disk before the next starts, so a killed run loses nothing written; a rerun skips
finished items. Under several processes, (method, case) groups are dealt out round-robin (so each adaptation
happens once), each process appends to its own results.rank<R>.jsonl, and rank 0 merges them when all are
done. One run at a time writes a folder (eval.rundir.WriterLock), and nothing is written into it before the
inputs (the reference clips) have been read.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tqdm import tqdm

from eval import distributed
from eval.errors import UserError
from eval.manifest import Benchmark, Case
from eval.methods import Method
from eval.metrics import Sample
from eval.naming import legacy_name, video_name
from eval.progress import BAR_FORMAT, RunProgress
from eval.record import Record, Timing
from eval.results import atomic_write_text, format_table, summarize, write_summary
from eval.rundir import RunFolder, held_by_launcher
from eval.scoring import Scorer
from eval.video import read_video, write_video

PACKAGES = ["vmc-suite", "torch", "torchvision", "diffusers", "transformers", "open_clip_torch", "numpy",
            "opencv-python-headless", "av"]


@dataclass(frozen=True)
class Item:
    method: str  # the method's label
    case: str
    prompt: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.method}|{self.case}|{self.prompt}|{self.seed}"

    @property
    def video_path(self) -> Path:
        return Path("videos") / self.method / self.case / video_name(self.prompt, self.seed)

    def existing_video_path(self, out: Path, prompts) -> Path:
        """The item's video as a folder holds it: under its name (eval.naming), or under the slug-only name of
        a folder written before names were unique, where that name is this prompt's alone among the case's
        `prompts`."""
        legacy = legacy_name(self.prompt, self.seed, prompts)
        if legacy is not None and not (out / self.video_path).exists():
            old = self.video_path.with_name(legacy)
            if (out / old).exists():
                return old
        return self.video_path


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


def device_description(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device}: {torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu: {platform.processor() or platform.machine()}"


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def check_compatible(path: Path, old: dict, new: dict, keys=("benchmark", "metric_specs"), rescore: bool = False):
    """Refuse to add results to an output folder made with other settings (`rescore`: name eval.rescore as the
    way to bring the folder's scores to new metric specs)."""
    def comparable(config, key):
        value = config.get(key)
        if key == "benchmark" and isinstance(value, dict):  # the manifest may be stored another way or moved
            return {k: v for k, v in value.items() if k != "manifest"}
        return value

    for key in keys:
        if comparable(old, key) != comparable(new, key):
            remedy = f", or score its videos again with python -m eval.rescore {path.parent}" \
                if rescore and key == "metric_specs" else ""
            what = {"benchmark": "another benchmark", "metric_specs": "other metric specs"}.get(key, f"another {key}")
            raise UserError(f"{path}: this run was made with {what}; scores would not be comparable — use another "
                            f"--out, or the same settings as before{remedy}")


def run_config(folder: RunFolder, methods, benchmark: Benchmark, seeds, scorer: Scorer, dist, device: str,
               command: list[str] | None = None) -> dict:
    """What run.json records of a run."""
    return {
        "benchmark": {"name": benchmark.name, "manifest": folder.stored_path(benchmark.path),
                      "cases": [c.id for c in benchmark.cases]},
        "methods": {m.label: m.info() for m in methods}, "seeds": seeds,
        "metric_specs": scorer.specs(), "metric_spec_ids": scorer.spec_ids(),
        "versions": versions(), "device": device_description(device), "world_size": dist.world_size,
        "cpu_threads": _torch_threads(),
        "command": command or sys.argv, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **folder.path_fields(),
    }


def _result_files(folder: RunFolder) -> list[str]:
    """results.jsonl and the part files of the ranks of an unfinished multi-process run."""
    return [p.name for p in [folder.results, *sorted(folder.path.glob("results.rank*.jsonl"))]]


def _made(folder: RunFolder) -> tuple[bool, set[str]]:
    """(whether any result is recorded, the labels of methods with videos on disk) of a run folder."""
    recorded = any(folder.records(name) for name in _result_files(folder))
    videos = {d.name for d in (folder.path / "videos").glob("*") if d.is_dir() and any(d.rglob("*.mp4"))}
    return recorded, videos


def write_run_json(folder: RunFolder, config: dict):
    """Create run.json, or merge methods and seeds into an existing one whose benchmark and specs match."""
    folder.write_config(merged_config(folder, config))


def merged_config(folder: RunFolder, config: dict) -> dict:
    """run.json as this run would write it, or a UserError where the folder was made otherwise. What nothing in
    the folder was made with yet may change: metric specs until a result is recorded, a method's settings until
    it has a video, the benchmark until either."""
    path = folder.run_json
    if path.exists():
        old = folder.config
        recorded, with_videos = _made(folder)
        keys = [k for k, binding in (("benchmark", recorded or with_videos), ("metric_specs", recorded)) if binding]
        check_compatible(path, old, config, keys=keys, rescore=True)
        for label, info in config["methods"].items():
            before = old.get("methods", {}).get(label)
            now = json.loads(json.dumps(info))  # as run.json holds it
            if before is not None and before != now and label in with_videos:
                changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
                raise UserError(f"{path}: method {label} was run here with other settings ({', '.join(changed)} "
                                "changed); its videos would mix both — use another --out, or the same settings")
        if not (recorded or with_videos):
            old = {k: v for k, v in old.items() if k in ("created", "seeds")}
        config = {**old, **config, "created": old.get("created", config["created"]),
                  "methods": {**old.get("methods", {}), **config["methods"]},
                  "seeds": sorted(set(old.get("seeds", [])) | set(config["seeds"]))}
    return config


def merge_results(folder: RunFolder, order: list[str]):
    """Fold rank part files into results.jsonl (one record a key, in item order), atomically; also mends a
    results.jsonl that holds a key twice (two writers at once, before runs took the folder's lock)."""
    files = _result_files(folder)
    lines = sum(1 for line in open(folder.results, "rb") if line.strip()) if folder.results.exists() else 0
    if len(files) == 1 and lines == len(folder.records()):
        return
    by_key = {}
    for name in files:
        for r in folder.records(name):
            by_key.setdefault(r.key, r)
    rank = {k: i for i, k in enumerate(order)}
    folder.replace(sorted(by_key.values(), key=lambda r: rank.get(r.key, len(rank))))
    for name in files[1:]:
        (folder.path / name).unlink()


def drop_shared_videos(folder: RunFolder):
    """Before file names were unique, two prompts of a case could share one file (their slugs being equal), and
    the later prompt was scored on the earlier one's video. Such records are dropped, said so, and made again
    under the prompt's own name; the first record of each file, whose prompt made it, is kept."""
    owner, wrong = {}, []
    for r in folder.records():
        first = owner.setdefault(r.video, r)
        if first.prompt != r.prompt:
            wrong.append(r)
    if wrong:
        drop = {r.key for r in wrong}
        folder.replace([r for r in folder.records() if r.key not in drop])
        print(f"note: {folder.results}: {len(wrong)} record(s) were scored on another prompt's video (names were "
              f"not unique then), e.g. {wrong[0].prompt!r} on {wrong[0].video}; they are made again", file=sys.stderr)


def load_references(benchmark: Benchmark) -> dict:
    """Every case's reference clip, read before anything is written: a bad clip stops the run with nothing
    in its folder to hold the next command to this one's settings."""
    return {c.id: c.load_reference() for c in benchmark.cases}


def run(methods: list[Method], benchmark: Benchmark, out: Path, seeds: list[int], scorer: Scorer,
        dist: distributed.DistInfo, device: str, command: list[str] | None = None,
        references: dict | None = None) -> Path:
    out = Path(out)
    items = [Item(m.label, c.id, p, s) for m in methods for c in benchmark.cases for p in c.target_prompts
             for s in seeds]
    order = [it.key for it in items]
    references = references if references is not None else load_references(benchmark)
    folder = RunFolder(out)
    lock = folder.lock()
    if dist.is_main and not held_by_launcher():
        lock.acquire()
    try:
        _run(methods, benchmark, folder, seeds, scorer, dist, device, command, references, items, order)
        return out
    finally:
        lock.release()


def _run(methods, benchmark, folder, seeds, scorer, dist, device, command, references, items, order):
    out = folder.path
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_run_json(folder, run_config(folder, methods, benchmark, seeds, scorer, dist, device, command))
        drop_shared_videos(folder)
    distributed.barrier(dist)

    done = {r.key for name in _result_files(folder) for r in folder.records(name)}
    results_file = folder.results.name if dist.world_size == 1 else f"results.rank{dist.rank}.jsonl"
    cases = {c.id: c for c in benchmark.cases}
    groups = [(m, cases[c.id]) for m in methods for c in benchmark.cases]
    mine = groups[dist.rank::dist.world_size]
    pending = [(m, case, it) for m, case in mine for it in items
               if it.method == m.label and it.case == case.id and it.key not in done]
    prefix = f"[rank {dist.rank}] " if dist.world_size > 1 else ""
    state_for: tuple | None = None
    with tqdm(total=len(pending), desc=f"{prefix}items", unit="video", disable=not pending, dynamic_ncols=True,
              position=dist.rank, bar_format=BAR_FORMAT) as bar:  # closed (its line ended) before an error is printed
        progress = RunProgress(bar, [(m.label, case.id) for m, case, _ in pending])
        try:
            for method, case, item in pending:
                if state_for is None or state_for[0] is not method or state_for[1] is not case:
                    method.cache_dir = out / "cache" / method.label
                    t0 = time.perf_counter()
                    with progress.adapting(method.label, case.id):
                        state = method.adapt(case)
                    adapt_s = round(time.perf_counter() - t0, 4)
                    state_for = (method, case, state)
                t0 = time.perf_counter()
                record = _run_item(out, method, state_for[2], case, item, references[case.id], scorer, adapt_s)
                folder.append([record], results_file)
                progress.item_done(method.label, case.id, time.perf_counter() - t0)
        finally:
            progress.close()
    distributed.barrier(dist)
    if dist.is_main:
        merge_results(folder, order)
        records = folder.records()
        summary = summarize(records, [m.label for m in methods])
        write_summary(summary, out / "summary.csv")
        print(f"\n{benchmark.name}: {len(records)} scored videos in {out}\n")
        print(format_table(summary))  # every method of the folder, not only this command's
        print("(↑ higher is better, ↓ lower; mean ± half the 95% CI over target prompts; [low, high] where the "
              "interval is clipped at the bound of a field's range)")
        facts = [m for m in dict.fromkeys(summary.metric) if m.startswith("protocol.")]
        if facts:
            print("\nfair-protocol report (means over items):\n" + format_table(summary, facts))
        labels = list(dict.fromkeys(summary.method))
        if len(labels) > 1:
            print(f"\npaired differences and tests: python -m eval.compare {out} --methods {','.join(labels)}")
        print(f"the paper's table: python -m eval.table {out} --format latex (or md, csv); figures: "
              f"python -m eval.plot {out} --out FIGURE.pdf")


def _run_item(out: Path, method: Method, state, case: Case, item: Item, reference, scorer: Scorer,
              adapt_s: float) -> Record:
    # beside the video, what is known of its making (its generation time), so that a video found on disk after
    # a kill is scored with the same facts as one made in the same process
    video_path = item.existing_video_path(out, case.target_prompts)
    path, facts_path = out / video_path, out / video_path.with_suffix(".json")
    if path.exists():  # a video written before a kill is complete (atomic rename): reuse it and its facts
        facts = json.loads(facts_path.read_text()) if facts_path.exists() else {"generate_s": None}
    else:
        t0 = time.perf_counter()
        video = method.generate(state, item.prompt, item.seed)
        # reading a video made elsewhere is no generation: its makers' times are `declared` facts instead
        facts = {"generate_s": round(time.perf_counter() - t0, 4) if method.measures_generation else None}
        facts_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(facts_path, json.dumps(facts) + "\n")  # before the video: a video never lacks them
        write_video(path, video)
    decoded = read_video(path)  # score what is on disk, so eval.score on these files agrees exactly
    t0 = time.perf_counter()
    scored = scorer.score_many([Sample(decoded.frames, item.prompt, reference.frames,
                                       case.meta.get("reference_prompt"), reference_mask=case.load_mask())])[0]
    score_s = round(time.perf_counter() - t0, 4)
    return Record(item.key, item.method, item.prompt, str(video_path), **scored, case=item.case, seed=item.seed,
                  num_frames=decoded.num_frames, fps=decoded.fps, size=list(decoded.size),
                  timing=Timing(facts["generate_s"], score_s, adapt_s),
                  protocol={**method.protocol(state), **method.declared_facts(state, item.prompt, item.seed)},
                  provenance=method.provenance(state, item.prompt, item.seed) or None)
