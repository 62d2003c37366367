"""Adaptation and generation per video of every native method on one backbone, measured side by side in one
process: seconds, each generation's ratio to t2v's, and peak GPU memory.

    python bench/methods.py                                  # CPU: the shapes backbone
    python bench/methods.py --backbone zeroscope-random      # GPU: ZeroScope's published sizes, random weights
    python bench/methods.py --backbone tiny-zeroscope --steps 2  # after make_tiny_zeroscope $VMC_CACHE/tiny-zeroscope
    python bench/methods.py --backbone wan2.1-random --steps 5    # GPU: Wan 2.1 T2V 1.3B's sizes (cogvideox-random)

Every method adapts to one reference clip (--case, a case of --benchmark, resampled to the backbone's frames and
size as in eval.run) with its settings on that backbone and generates one video for the case's first target
prompt (after one warm-up video of another seed). With --steps, a tuning method trains that many steps and its
time for its own step count is extrapolated from the time per step (at ZeroScope's size, 400 steps of vmc would
take most of a GPU session). `zeroscope-random` is a random model of ZeroScope's layout at its published sizes
(24 frames at 576×320; written once by `python -m vmc.tools.make_tiny_zeroscope --official-size` to --model):
timing only, nothing meaningful is generated. `wan2.1-random` and `cogvideox-random` are the same for the video
diffusion transformers (vmc.tools.make_tiny_dit --official-size: Wan 2.1 T2V 1.3B, 81 frames at 480×832;
CogVideoX-2B, 49 frames at 480×720). A method that has no port to the backbone's kind is listed with the line that
refuses it.
Published figures to compare with: MotionDirector about 14 GB and 1.5–4.5 minutes per video on an A5000; DMT
about 32 GB and 7 minutes per video on an A40; DiTFlow (CogVideoX-5B) about 8 minutes per video on an A40.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.errors import UserError, cli_main  # noqa: E402

METHODS = "t2v,vmc,vmc-eps,tav,md,motion-inversion,motionclone,dmt,det,ditflow,inversion"
# Random models of a backbone's layout, for timing: name → (the module whose make(root, size=, **options) writes
# one at the published sizes, size="official", or at tiny sizes, "tiny"; its options). A name whose module this
# build lacks is refused.
RANDOM_MODELS = {"zeroscope-random": ("vmc.tools.make_tiny_zeroscope", {}),
                 "wan2.1-random": ("vmc.tools.make_tiny_dit", {"layout": "wan"}),
                 "cogvideox-random": ("vmc.tools.make_tiny_dit", {"layout": "cogvideox"})}


def settle(device):
    """Wait for the GPU's queued work and start a new peak-memory count (nothing on a CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)


def cpu_threads(device):
    """On a CPU, compute with eval.run's thread count (nothing on a GPU)."""
    if torch.device(device).type == "cpu":
        from eval.run import CPU_THREADS

        torch.set_num_threads(CPU_THREADS)


def peak_gb(device) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(device) / 2**30


def random_model_problem(name: str) -> str | None:
    """Why random model `name` cannot be made in this build (None when it can)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(RANDOM_MODELS[name][0])
    except ModuleNotFoundError:
        found = None
    return None if found else f"backbone kind not available in this build (no {RANDOM_MODELS[name][0]})"


def random_model(name: str, root: Path, size: str = "official") -> Path:
    """The folder of random model `name` at `size`: `root`, written there when it holds no model yet."""
    import importlib

    problem = random_model_problem(name)
    if problem:
        raise UserError(f"{name}: {problem}")
    if not (root / "model_index.json").is_file():
        t0 = time.perf_counter()
        partial = root.with_name(f".{root.name}.partial")  # renamed once whole: a stopped writing leaves no model
        shutil.rmtree(partial, ignore_errors=True)
        tool, options = RANDOM_MODELS[name]
        importlib.import_module(tool).make(partial, size=size, **options)
        partial.rename(root)
        print(f"random model written to {root} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return root


def measure(name: str, backbone: str, case, device: str, steps: int | None, cache: Path, warm_up: bool = True) -> dict:
    from eval.cli_common import method_options
    from eval.methods import create_method
    from vmc.families.tuning import TuningMethod

    try:
        method = create_method(f"{name}:{backbone}", device, method_options())
    except UserError as e:  # no port to this kind of backbone
        return {"refused": str(e)}
    method.cache_dir = cache
    official = None
    if steps and isinstance(method, TuningMethod) and method.trains:
        official = method.config.train.steps
        method.configure({"steps": steps})
    settle(device)
    t0 = time.perf_counter()
    state = method.adapt(case)
    adapt_peak = peak_gb(device)
    adapt_s = time.perf_counter() - t0
    protocol = method.protocol(state) or {}
    if official is not None:  # the official number of steps, from the time per step measured
        train_s = protocol.get("train_s", 0.0)
        adapt_s += train_s * (official / steps - 1)
    if warm_up:  # a video of another seed: the models loaded, the kernels chosen
        method.generate(state, case.target_prompts[0], 1)
    settle(device)
    t0 = time.perf_counter()
    method.generate(state, case.target_prompts[0], 0)
    generate_peak = peak_gb(device)
    return {"adapt_s": adapt_s, "generate_s": time.perf_counter() - t0, "adapt_gb": adapt_peak,
            "generate_gb": generate_peak, "trained": protocol.get("trained_parameters", 0)}


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="shapes", help=f"any eval.run backbone, or {', '.join(RANDOM_MODELS)}")
    p.add_argument("--model", type=Path, default=None,
                   help="where a random model is (written when absent; default /tmp/bench-NAME)")
    p.add_argument("--benchmark", default="shapes-dev")
    p.add_argument("--case", default="rise")
    p.add_argument("--methods", default=METHODS)
    p.add_argument("--steps", type=int, default=None, help="training steps actually run by a tuning method "
                   "(default: its own count)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    from eval.manifest import load_benchmark
    from eval.run import CPU_THREADS

    backbone = args.backbone
    if backbone in RANDOM_MODELS:
        backbone = str(random_model(backbone, args.model or Path(f"/tmp/bench-{backbone}")))
    case = load_benchmark(args.benchmark).case(args.case)
    cpu_threads(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {name: measure(name, backbone, case, args.device, args.steps, Path(tmp))
                for name in args.methods.split(",")}
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {CPU_THREADS} thread(s)"
    print(f"backbone {args.backbone}, case {args.benchmark}/{args.case}, {where}"
          + (f"; tuning methods: {args.steps} steps run, their own count extrapolated" if args.steps else ""))
    base = rows.get("t2v", {}).get("generate_s")

    def gb(value):
        return f"{value:.1f}" if value is not None else "-"

    print(f"{'method':<18}{'trained':>12}{'adapt s':>10}{'generate s':>12}{'× t2v':>8}{'adapt GB':>10}{'gen GB':>8}")
    for name, r in rows.items():
        if "refused" in r:
            print(f"{name:<18}refused: {r['refused']}")
            continue
        ratio = f"{r['generate_s'] / base:.2f}" if base else "-"
        print(f"{name:<18}{r['trained']:>12,}{r['adapt_s']:>10.1f}{r['generate_s']:>12.1f}{ratio:>8}"
              f"{gb(r['adapt_gb']):>10}{gb(r['generate_gb']):>8}")


if __name__ == "__main__":
    main()
