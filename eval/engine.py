"""The run engine behind `python -m eval.run`: method × case × target prompt × seed → video → scores.

Layout of a run directory (ARCHITECTURE.md): run.json, videos/<method>/<case>/<prompt-slug>__s<seed>.mp4,
results.jsonl, summary.csv. Every finished item is on disk before the next starts, so a killed run loses
nothing written; a rerun skips finished items. Under several processes, (method, case) groups are dealt out
round-robin (so each adaptation happens once), each process appends to its own results.rank<R>.jsonl, and
rank 0 merges them when all are done.
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
from eval.methods import Method, slugify
from eval.results import (ResultsWriter, atomic_write_text, format_table, read_results, summarize, write_results,
                          write_summary)
from eval.scoring import Scorer
from eval.video import read_video, write_video

PACKAGES = ["vmc-suite", "torch", "torchvision", "diffusers", "transformers", "open_clip_torch", "numpy",
            "opencv-python-headless", "av", "decord"]


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
        return Path("videos") / self.method / self.case / f"{slugify(self.prompt)}__s{self.seed}.mp4"


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


def check_compatible(path: Path, old: dict, new: dict, keys=("benchmark", "metric_specs"), rescore: bool = False):
    """Refuse to add results to an output folder made with other settings (`rescore`: name eval.rescore as the
    way to bring the folder's scores to new metric specs)."""
    for key in keys:
        if old.get(key) != new.get(key):
            remedy = f", or score its videos again with python -m eval.rescore {path.parent}" \
                if rescore and key == "metric_specs" else ""
            what = {"benchmark": "another benchmark", "metric_specs": "other metric specs"}.get(key, f"another {key}")
            raise UserError(f"{path}: this run was made with {what}; scores would not be comparable — use another "
                            f"--out, or the same settings as before{remedy}")


def write_run_json(out: Path, config: dict):
    """Create run.json, or merge methods and seeds into an existing one whose benchmark and specs match."""
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        check_compatible(path, old, config, rescore=True)
        for label, info in config["methods"].items():
            before = old.get("methods", {}).get(label)
            now = json.loads(json.dumps(info))  # as run.json holds it
            if before is not None and before != now:
                changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
                raise UserError(f"{path}: method {label} was run here with other settings ({', '.join(changed)} "
                                "changed); its videos would mix both — use another --out, or the same settings")
        config = {**old, **config, "created": old.get("created", config["created"]),
                  "methods": {**old.get("methods", {}), **config["methods"]},
                  "seeds": sorted(set(old.get("seeds", [])) | set(config["seeds"]))}
    atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def merge_results(out: Path, order: list[str]):
    """Fold rank part files into results.jsonl (deduplicated, in item order), atomically."""
    parts = sorted(out.glob("results.rank*.jsonl"))
    if not parts:
        return
    by_key = {}
    for p in [out / "results.jsonl", *parts]:
        for r in read_results(p):
            by_key.setdefault(r["key"], r)
    rank = {k: i for i, k in enumerate(order)}
    records = sorted(by_key.values(), key=lambda r: rank.get(r["key"], len(rank)))
    write_results(out / "results.jsonl", records)
    for p in parts:
        p.unlink()


def run(methods: list[Method], benchmark: Benchmark, out: Path, seeds: list[int], scorer: Scorer,
        dist: distributed.DistInfo, device: str, command: list[str] | None = None) -> Path:
    out = Path(out)
    items = [Item(m.label, c.id, p, s) for m in methods for c in benchmark.cases for p in c.target_prompts
             for s in seeds]
    order = [it.key for it in items]
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_run_json(out, {
            "benchmark": {"name": benchmark.name, "manifest": str(benchmark.path),
                          "cases": [c.id for c in benchmark.cases]},
            "methods": {m.label: m.info() for m in methods}, "seeds": seeds,
            "metric_specs": scorer.specs(), "metric_spec_ids": scorer.spec_ids(),
            "versions": versions(), "device": device_description(device), "world_size": dist.world_size,
            "command": command or sys.argv, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
    distributed.barrier(dist)

    done = {r["key"] for p in [out / "results.jsonl", *out.glob("results.rank*.jsonl")] for r in read_results(p)}
    results_file = out / ("results.jsonl" if dist.world_size == 1 else f"results.rank{dist.rank}.jsonl")
    writer = ResultsWriter(results_file)
    cases = {c.id: c for c in benchmark.cases}
    groups = [(m, cases[c.id]) for m in methods for c in benchmark.cases]
    mine = groups[dist.rank::dist.world_size]
    pending = [(m, case, it) for m, case in mine for it in items
               if it.method == m.label and it.case == case.id and it.key not in done]
    prefix = f"[rank {dist.rank}] " if dist.world_size > 1 else ""
    state_for: tuple | None = None
    references: dict[str, object] = {}
    with tqdm(total=len(pending), desc=f"{prefix}items", unit="video", disable=not pending, dynamic_ncols=True,
              position=dist.rank) as bar:  # closed (its line ended) before an error is printed
        for method, case, item in pending:
            bar.set_postfix_str(f"{method.label} / {case.id}")
            if state_for is None or state_for[0] is not method or state_for[1] is not case:
                method.cache_dir = out / "cache" / method.label
                t0 = time.perf_counter()
                state = method.adapt(case)
                adapt_s = time.perf_counter() - t0
                state_for = (method, case, state)
            if case.id not in references:
                references[case.id] = case.load_reference()
            record = _run_item(out, method, state_for[2], case, item, references[case.id], scorer)
            record["timing"]["adapt_s"] = round(adapt_s, 4)
            record["protocol"] = method.protocol(state_for[2])
            provenance = method.provenance(state_for[2], item.prompt, item.seed)
            if provenance:
                record["provenance"] = provenance
            writer.append(record)
            bar.update()
    distributed.barrier(dist)
    if dist.is_main:
        merge_results(out, order)
        records = read_results(out / "results.jsonl")
        summary = summarize(records, [m.label for m in methods])
        write_summary(summary, out / "summary.csv")
        print(f"\n{benchmark.name}: {len(records)} scored videos in {out}\n")
        shown = summary[summary.method.isin([m.label for m in methods])]
        print(format_table(shown))
        print("(mean ± half the 95% CI over target prompts)")
        facts = [m for m in dict.fromkeys(shown.metric) if m.startswith("protocol.")]
        if facts:
            print("\nfair-protocol report (means over items):\n" + format_table(shown, facts))
        labels = list(dict.fromkeys(shown.method))
        if len(labels) > 1:
            print(f"\npaired differences and tests: python -m eval.compare {out} --methods {','.join(labels)}")
    return out


def _run_item(out: Path, method: Method, state, case: Case, item: Item, reference, scorer: Scorer) -> dict:
    path = out / item.video_path
    generate_s = None
    if not path.exists():  # a video written before a kill is complete (atomic rename): reuse it
        t0 = time.perf_counter()
        video = method.generate(state, item.prompt, item.seed)
        generate_s = round(time.perf_counter() - t0, 4)
        write_video(path, video)
    decoded = read_video(path)  # score what is on disk, so eval.score on these files agrees exactly
    t0 = time.perf_counter()
    scored = scorer.score_many([(decoded.frames, item.prompt, reference.frames,
                                 case.meta.get("reference_prompt"))])[0]
    score_s = round(time.perf_counter() - t0, 4)
    return {"key": item.key, "method": item.method, "case": item.case, "prompt": item.prompt, "seed": item.seed,
            "video": str(item.video_path), "num_frames": decoded.num_frames, "fps": decoded.fps,
            "size": list(decoded.size), **scored,
            "timing": {"generate_s": generate_s, "score_s": score_s}}
