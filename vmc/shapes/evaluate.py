"""python -m vmc.shapes.evaluate [--backbone shapes] [--samples 24] [--out report.json]

How good the shapes cascade is on its own, from plain prompts (no adaptation), judged by the oracle: mean
`oracle_appearance` (also after each stage, to see which stage loses it), and how often the prompted motion is
recognisable, i.e. the generated object's trajectory agrees better with the prompted motion than with any other
translating or scaling motion of the world (each rendered as ground truth for the same scene). Prompts are
random scenes of the motions seen in training.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from eval.errors import MetricUndefined, UserError, cli_main
from eval.results import atomic_write_text
from eval.metrics import Sample
from eval.metrics.oracle import OracleMetric, object_track, trajectory_agreement
from eval.shapes.world import MOTIONS, random_scene, render
from vmc.shapes.data import CLIP_FRAMES, SR_SIZE, held_out_motions

TRANSLATING = [m for m in MOTIONS if not m.startswith("rotate")]


def truth_tracks(scene) -> dict:
    """The object's ground-truth track in the scene under each translating/scaling motion."""
    colour = scene.objects[0].colour
    return {m: object_track(render(replace(scene, motion=m), CLIP_FRAMES, SR_SIZE).frames, colour)
            for m in TRANSLATING}


def recognised(frames: np.ndarray, scene, truths: dict) -> bool:
    """Is the prompted motion the best-agreeing one among all translating/scaling motions (`truth_tracks`)?"""
    track = object_track(frames, scene.objects[0].colour)
    scores = {}
    for m, truth in truths.items():
        try:
            scores[m] = trajectory_agreement(track, truth)
        except MetricUndefined:
            continue
    return max(scores, key=scores.get) == scene.motion and scores[scene.motion] > 0


def wilson95(k: int, n: int) -> tuple[float, float]:
    """Wilson's 95% interval for a proportion k/n: whether a share measured on a few dozen samples can be told
    apart from a bar such as 70% (the plain Wald interval is too narrow at these sizes)."""
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def evaluate(backbone: str, samples: int, seed: int, device: str) -> dict:
    from vmc.backbones import resolve_backbone, to_uint8
    from vmc.backbones.show1 import Show1Cascade

    cascade = Show1Cascade(resolve_backbone(backbone), device)
    rng = np.random.default_rng(seed)
    held_out = held_out_motions(cascade.backbone)
    motions = [m for m in TRANSLATING if m not in held_out]
    oracle = OracleMetric()
    rows = []
    for i in tqdm(range(samples), desc="shapes evaluate"):
        scene = random_scene(rng, motions=[motions[i % len(motions)]], two_objects=0.0)
        video = cascade.run(scene.caption(), seed=i)
        *_, final = video
        size = video[final].shape[-2:]
        frames = {stage: to_uint8(_at_size(x[0], size)) for stage, x in video.items()}
        stages = {stage: oracle.score(Sample(f, scene.caption()))[0]["oracle_appearance"]
                  for stage, f in frames.items()}
        truths = truth_tracks(scene)
        recognised_at = {stage: recognised(f, scene, truths) for stage, f in frames.items()}
        rows.append({"prompt": scene.caption(), "motion": scene.motion, "oracle_appearance": stages[final],
                     "motion_recognised": recognised_at[final], "stage_appearance": stages,
                     "stage_motion_recognised": recognised_at})
    return {"backbone": backbone, "samples": samples, "seed": seed, "held_out": list(held_out),
            "oracle_appearance": float(np.mean([r["oracle_appearance"] for r in rows])),
            "motion_recognised": float(np.mean([r["motion_recognised"] for r in rows])),
            "motion_recognised_ci95": wilson95(sum(r["motion_recognised"] for r in rows), len(rows)),
            **{key: {stage: float(np.mean([r[key][stage] for r in rows])) for stage in rows[0][key]} if rows else {}
               for key in ("stage_appearance", "stage_motion_recognised")}, "rows": rows}


def _at_size(video: torch.Tensor, size) -> torch.Tensor:
    """(C, F, h, w) → (C, F, H, W) by pixel repetition, so an earlier stage is judged at the final size."""
    if tuple(video.shape[-2:]) == tuple(size):
        return video
    return torch.nn.functional.interpolate(video.transpose(0, 1), size=tuple(size), mode="nearest").transpose(0, 1)


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.shapes.evaluate", description=__doc__.split("\n\n")[1])
    p.add_argument("--backbone", default="shapes")
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the report (JSON) here")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    if args.out and not args.out.parent.is_dir():
        raise UserError(f"{args.out}: --out's folder does not exist")
    report = evaluate(args.backbone, args.samples, args.seed,
                      args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    low, high = report["motion_recognised_ci95"]
    print(f"oracle_appearance {report['oracle_appearance']:.3f}   motion recognised "
          f"{report['motion_recognised']:.0%} of {args.samples} (95% Wilson interval {low:.0%}–{high:.0%})")
    print("oracle_appearance after each stage (earlier stages enlarged to the final size): " +
          ", ".join(f"{stage} {value:.3f}" for stage, value in report["stage_appearance"].items()))
    print("motion recognised after each stage: " +
          ", ".join(f"{stage} {value:.0%}" for stage, value in report["stage_motion_recognised"].items()))
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
