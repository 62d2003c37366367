"""python -m eval.run --methods vmc,tav [--benchmark shapes] [--out runs/NAME] [--seeds 0,1]

Adapt and generate with each method on every case × target prompt × seed of a benchmark, score every video,
and write the run directory (run.json, videos/, results.jsonl, summary.csv). Resumable; under `torchrun
--nproc_per_node N` or `accelerate launch` the work is sharded across processes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from eval import distributed
from eval.cli_common import add_metric_args, build_scorer, method_options
from eval.errors import UserError, cli_main
from eval.manifest import load_benchmark
from eval.methods import IngestMethod, available_methods, create_method, describe_available, split_label
from eval.protocol import POLICIES
from eval.settings import apply_settings

DEFAULT_BENCHMARK = "shapes"
MAX_AUTO_JOBS = 4
# Intra-op threads of every process on a CPU. PyTorch's CPU kernels split their work, reductions included, by
# the thread count, so the same video computed with 2 threads and with 1 differs in its last bits (3 of 8
# shapes videos of vmc did, and with them every score); one thread everywhere makes a run's numbers the same
# whether it is resumed, split by --jobs or sharded by torchrun.
CPU_THREADS = 1
INTERRUPTED = ("finished items are kept; rerun the same command to resume (it merges the results.rank*.jsonl "
               "files the workers left into results.jsonl)")


def parse_args(argv):
    import textwrap

    p = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=textwrap.fill(f"registered methods: {describe_available()} (a method that takes "
                                                     "an argument gets it after a colon: vmc:zeroscope, "
                                                     "precomputed:DIR)", 100))
    p.add_argument("--methods", required=True, help="comma-separated method specs, e.g. vmc,tav or precomputed:DIR, "
                   "each optionally labelled LABEL=SPEC (e.g. Ours=precomputed:DIR)")
    p.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="built-in benchmark name or manifest YAML path "
                   f"(default: {DEFAULT_BENCHMARK})")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<benchmark>)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--cases", default=None, help="comma-separated case ids to run (default: all)")
    p.add_argument("--data-root", type=Path, default=None, help="where the reference clips are (overrides the "
                   "manifest's root)")
    p.add_argument("--jobs", default="auto", help="worker processes on this machine, each taking its share of the "
                   "(method, case) groups (default auto: for models run on a CPU, one per CPU thread up to "
                   f"{MAX_AUTO_JOBS} and no more than the groups; otherwise 1; use torchrun for several GPUs). On a "
                   "CPU every process computes with one thread, so results do not depend on how a run is split")
    p.add_argument("--settings", type=Path, default=None, metavar="FILE",
                   help="JSON whose \"methods\" maps a method's label to settings taken over its defaults and the "
                        "backbone's (e.g. what python -m eval.tune chose); run.json records them under the method")
    p.add_argument("--outside-videos", choices=POLICIES, default="resample",
                   help="videos made elsewhere (precomputed:DIR, external systems) that differ from the benchmark's "
                        "frames, fps or size: resample them by the one documented rule (default), or refuse them")
    p.add_argument("--check", action="store_true",
                   help="check everything (manifest, reference clips, settings, every precomputed video) and list "
                        "what is missing or wrong, without writing anything")
    add_metric_args(p)
    return p.parse_args(argv)


def _jobs(value: str, groups: int, device: str, methods) -> int:
    """How many worker processes: small models run faster as several single-threaded processes than as one
    process with all the threads (the shapes benchmark: ~1.25× with 2 × 1 thread against 1 × 2 threads), and
    each process computes with one thread anyway (see `CPU_THREADS`)."""
    if value == "auto":
        if device.startswith("cuda") or not any(m.compute_bound for m in methods):
            return 1
        return max(1, min(MAX_AUTO_JOBS, groups, distributed.total_threads()))
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise UserError(f"--jobs must be a positive integer or auto, got '{value}'")
    return min(jobs, groups)


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--{what} must be comma-separated integers, got '{text}'") from None
    if not values:
        raise UserError(f"--{what} is empty")
    return values


def _registered(spec: str) -> bool:
    """Whether a spec names a registered method (True for a bad label, which create_method reports)."""
    try:
        return split_label(spec)[1].partition(":")[0] in available_methods()
    except UserError:
        return True


def preflight(args, seeds: list[int], device: str, read: bool) -> tuple[list, object, dict, list[str]]:
    """Everything eval.run checks before it writes anything, every problem collected rather than the first
    raised: the methods and their labels, the settings file, the benchmark manifest, every reference clip, and
    every video a method ingests (with `read`, eval.run --check, each read in full). Returns (methods,
    benchmark, references, problems)."""
    problems, methods, benchmark, references = [], [], None, {}
    specs = [s.strip() for s in args.methods.split(",") if s.strip()]
    if not specs:
        problems.append("--methods is empty")
    unknown = [split_label(s)[1].partition(":")[0] for s in specs if not _registered(s)]
    if unknown:
        problems.append(f"method(s) {', '.join(repr(u) for u in unknown)} not registered "
                        f"(registered: {describe_available()})")
    for spec in specs:
        if not _registered(spec):
            continue
        try:
            methods.append(create_method(spec, device=device, options=method_options()))
        except UserError as e:
            problems.append(str(e))
    for m in methods:
        if isinstance(m, IngestMethod):
            m.outside_videos = args.outside_videos
    try:  # every method's configuration, checked before any write
        problems += apply_settings(methods, args.settings)
    except UserError as e:  # the settings file itself
        problems.append(str(e))
    labels = [m.label for m in methods]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        problems.append(f"--methods {args.methods}: the label(s) {', '.join(twice)} name two methods; give each its "
                        "own, e.g. Ours=precomputed:DIR")
    try:
        benchmark = load_benchmark(args.benchmark, data_root=args.data_root)
        if args.cases:
            wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
            benchmark.cases = [benchmark.case(c) for c in wanted]
    except UserError as e:
        problems.append(str(e))
    if benchmark is not None:
        for case in benchmark.cases:
            try:
                references[case.id] = case.load_reference()
            except UserError as e:
                problems.append(str(e))
        for m in methods:
            problems += m.preflight(benchmark.cases, references, seeds, read=read)
    return methods, benchmark, references, problems


def _check_folder(args, methods, benchmark, seeds: list[int], dist, device: str) -> list[str]:
    """eval.run --check, once the inputs are sound: the metrics load, and an existing run folder takes this run
    (same benchmark and metric specs, no method's settings changed under its videos), as run.json would be
    written; nothing is written."""
    from eval.engine import merged_config, run_config
    from eval.rundir import RunFolder

    folder = RunFolder(args.out or Path("runs") / benchmark.name)
    try:
        scorer = build_scorer(args, benchmark.metrics, device=device)
        if folder.run_json.exists():
            merged_config(folder, run_config(folder, methods, benchmark, seeds, scorer, dist, device))
    except UserError as e:
        return [str(e)]
    return []


@cli_main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    seeds = _int_list(args.seeds, "seeds")
    dist = distributed.init()
    device = dist.device(args.device)
    methods, benchmark, references, problems = preflight(args, seeds, device, read=args.check)
    if args.check:
        if not problems:
            problems = _check_folder(args, methods, benchmark, seeds, dist, device)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(2)
        items = len(methods) * sum(len(c.target_prompts) for c in benchmark.cases) * len(seeds)
        print(f"ok: {len(methods)} method(s), {len(benchmark.cases)} case(s), {items} videos to make or ingest; "
              "nothing written")
        return
    if problems:
        raise UserError("; ".join(problems))
    from eval.engine import run
    from eval.rundir import RunFolder

    out = args.out or Path("runs") / benchmark.name
    jobs = _jobs(args.jobs, len(methods) * len(benchmark.cases), device, methods) if dist.world_size == 1 else 1
    if jobs > 1:
        with RunFolder(out).lock() as lock:  # lent to the workers: it lasts while any of them lives
            raise SystemExit(distributed.launch_local(jobs, "eval.run", argv, CPU_THREADS, lock_fd=lock.fd,
                                                      interrupted=INTERRUPTED))
    import torch

    threads = torch.get_num_threads()
    if not device.startswith("cuda"):
        torch.set_num_threads(CPU_THREADS)
    try:
        scorer = build_scorer(args, benchmark.metrics, device=device)
        run(methods, benchmark, out, seeds, scorer, dist, device, references=references)
    except KeyboardInterrupt:
        if dist.world_size > 1:  # one line for the run, from its launcher (launch_local) or its first rank
            if dist.is_main and not os.environ.get(distributed.LOCAL_LAUNCH):
                print(f"interrupted: {INTERRUPTED}", file=sys.stderr)
            raise SystemExit(130) from None
        raise
    finally:
        torch.set_num_threads(threads)  # as it was for whoever called main() in-process
        distributed.shutdown(dist)


if __name__ == "__main__":
    main()
