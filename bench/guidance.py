"""Generation time of the training-free guidance methods (motionclone, dmt) against t2v, measured side by side in
one process, alternating the methods for each repeat; printed as medians and as ratios to t2v.

    python bench/guidance.py [--repeats 3] [--case rise]        # CPU: the shapes backbone, one shapes-dev case
    python bench/guidance.py --show1-random [--repeats 2]       # GPU: Show-1 size keyframe stage, random weights

shapes: each method's generate() (the whole cascade, what protocol.generate_s records) and its keyframe stage
alone, with the official settings (motionclone: 60% of the 16 steps guided by one gradient each; dmt: 40% by
10 Adam iterations each). --show1-random: the keyframe stage alone at Show-1's size (8×40×64, 75 DPM-Solver++
steps, CFG batch of 2, fp16) with the real show-1-base UNet config and random weights, the guidance read from
a random reference (timing only: no download, nothing meaningful is generated).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.unet_keyframes import SIZE  # noqa: E402

GUIDED = ("t2v", "motionclone", "dmt")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def report(times: dict[str, dict[str, list[float]]]):
    columns = list(next(iter(times.values())))
    print(f"{'method':<14}" + "".join(f"{c + ' s':>16}{'× t2v':>8}" for c in columns))
    for method, by_column in times.items():
        row = f"{method:<14}"
        for c in columns:
            median = statistics.median(by_column[c])
            row += f"{median:>16.2f}{median / statistics.median(times['t2v'][c]):>8.2f}"
        print(row)


def shapes(repeats: int, case_id: str, cache: Path):
    from baselines.dmt import DMTMethod
    from baselines.motionclone import MotionCloneMethod
    from eval.manifest import load_benchmark
    from vmc.families.cascade import T2VMethod

    case = next(c for c in load_benchmark("shapes-dev").cases if c.id == case_id)
    prompt = case.target_prompts[0]
    methods = {}
    for cls in (T2VMethod, MotionCloneMethod, DMTMethod):
        method = cls(None, "cpu")
        method.cache_dir = cache
        methods[cls.name] = (method, method.adapt(case))
        method.generate(methods[cls.name][1], prompt, 0)  # warm-up: every stage loaded (shapes keeps them)
    times = {name: {"generate": [], "keyframes": []} for name in methods}
    for _ in range(repeats):
        for name, (method, state) in methods.items():
            start, guidance = None, None
            if state is not None:  # a guidance method (t2v adapts to nothing)
                start, guidance = method.start(state["reference"], 0), method.make_guidance(state["reference"])
            times[name]["generate"].append(timed(lambda: method.generate(state, prompt, 0)))
            times[name]["keyframes"].append(timed(lambda: method.cascade.sample_keyframes(prompt, 0, start,
                                                                                           guidance=guidance)))
    print(f"shapes backbone, case {case_id}, {torch.get_num_threads()} thread(s), median of {repeats}")
    report(times)


def show1_random(methods=GUIDED, repeats: int = 2, device="cuda", dtype=torch.float16, tiny: bool = False,
                 steps: int = 75, size=SIZE, dmt_iterations: int = 10) -> dict[str, dict[str, list[float]]]:
    """Seconds of the keyframe stage of each of `methods` (t2v and the guidance methods) at Show-1's size (or
    tiny widths) with random weights, the guidance read from a random reference: `repeats` rounds after one that
    warms up, the methods alternating within each round. DMT's official settings but `dmt_iterations`."""
    from diffusers import DPMSolverMultistepScheduler

    from baselines.dmt import DMTGuidance, DMTMethod, spatial_marginal_mean
    from baselines.motionclone import MotionCloneGuidance
    from bench.cascade import unet_configs
    from bench.unet_keyframes import build
    from vmc.configs import load_config
    from vmc.families.guidance import guided_steps
    from vmc.models.features import UNetFeatures
    from vmc.pipelines import KeyframeSampler

    config = unet_configs(tiny)["keyframes"]
    unet = build(config, device, dtype)
    scheduler = lambda: DPMSolverMultistepScheduler.from_config(load_config("show1-base-scheduler"))  # noqa: E731
    s = scheduler()
    s.set_timesteps(steps)
    timesteps = [int(t) for t in s.timesteps]
    g = torch.Generator(device).manual_seed(0)
    text, negative = (torch.randn(1, 77, config["encoder_hid_dim"], generator=g, device=device, dtype=dtype)
                      for _ in range(2))
    reference = torch.randn(1, 3, *size, generator=g, device=device, dtype=dtype)

    def motionclone():
        temporal = [n for n, _ in unet.named_modules() if n.startswith(("up_blocks.1.temp_attentions.",
                    "up_blocks.2.temp_attentions.")) and n.endswith(("attn1", "attn2"))]
        attention = UNetFeatures(unet, attention_probs=temporal)
        guided = timesteps[:guided_steps(steps, 0.6)]
        with torch.no_grad():
            mc = [{n: p.max(-1) for n, p in attention(reference, t, text).items()} for t in guided]
        weights = {n: 2e4 if n.startswith("up_blocks.1") else 1e4 for n in temporal}
        return MotionCloneGuidance(mc, weights, guided, s.alphas_cumprod, 1.0, guided_steps(steps, 0.02))

    def dmt():
        features = DMTMethod.defaults["features"]
        outputs = UNetFeatures(unet, outputs=features)
        guided = timesteps[:guided_steps(steps, 0.4)]
        with torch.no_grad():
            means = [{n: spatial_marginal_mean(v) for n, v in outputs(reference, t, text).items()} for t in guided]
        return DMTGuidance(means, features, guided, torch.linspace(0.007, 0.004, len(guided)).tolist(),
                           dmt_iterations)

    guidances = {name: {"t2v": lambda: None, "motionclone": motionclone, "dmt": dmt}[name]() for name in methods}
    times = {name: {"keyframes": []} for name in guidances}
    for r in range(repeats + 1):  # the first round warms up
        for name, guidance in guidances.items():
            sampler = KeyframeSampler(unet, scheduler())
            took = timed(lambda: sampler(text, negative, *size, steps, 9.0, progress=False, guidance=guidance,
                                         generator=torch.Generator(device).manual_seed(0)))
            if r:
                times[name]["keyframes"].append(took)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--case", default="rise", help="shapes-dev case (default: rise)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/bench-guidance-cache"),
                   help="where the reference's inversion is cached")
    p.add_argument("--show1-random", action="store_true", help="Show-1 size with random weights, on a GPU")
    args = p.parse_args()
    if args.show1_random:
        times = show1_random(repeats=args.repeats)
        print(f"Show-1 size, random weights, {torch.cuda.get_device_name()}, fp16, median of {args.repeats}")
        report(times)
    else:
        shapes(args.repeats, args.case, args.cache)


if __name__ == "__main__":
    main()
