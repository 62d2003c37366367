"""python -m vmc.shapes.probe [--backbone shapes] [--clips 8] [--timesteps 900,600,300,100] [--out probe.json]

Does the keyframe UNet read each motion from its caption? For clips of every trained motion, the UNet's
denoising loss under the true caption is compared with its loss under the caption of the time-reversed motion
(the same frames played backwards: "to the left" for "to the right", "rising" for "falling"), with the same
noise, at fixed noise levels. The score is the mean log ratio log(L_reversed / L_true): near 0, the caption does
not tell the model which way the motion runs; the share of clips for which the true caption has the lower loss
goes with it. Teacher-forced, with no sampling: a minute on a CPU, and far less noisy than judging sampled videos
(`vmc.shapes.evaluate`), so it shows what a training change does to the sense of each motion.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from eval.errors import UserError, cli_main
from eval.results import atomic_write_text
from eval.shapes.world import MOTIONS, random_scene, render
from vmc.prediction import training_target
from vmc.shapes.data import CLIP_FRAMES, SR_SIZE, held_out_motions, keyframe_view, to_tensor, train_motions


def probed_motions(held_out) -> list[str]:
    """The trained motions that differ from their time reversal (bouncing is its own)."""
    return [m for m in train_motions(held_out) if MOTIONS[m].reverse != m]


def log_loss_ratio(unet, noisy: torch.Tensor, t: torch.Tensor, text: torch.Tensor, target: torch.Tensor):
    """log(L_reversed / L_true) per clip: the UNet's loss on each noisy clip (timesteps t, one per clip) under
    the reversed motion's caption over its loss under the clip's own; `text` holds the own captions' embeddings,
    then the reversed ones'. What the probe reports and what training's reversal margin keeps above a margin."""
    n = len(noisy)
    out = unet(noisy.repeat(2, 1, 1, 1, 1), t.repeat(2), text).sample
    loss = ((out[:, :3].float() - target.repeat(2, 1, 1, 1, 1).float()) ** 2).mean((1, 2, 3, 4))
    return (loss[n:] / loss[:n]).log()


@torch.no_grad()
def probe(backbone: str, clips: int, timesteps: list[int], seed: int, device: str, motions=None) -> dict:
    from vmc.backbones import resolve_backbone
    from vmc.backbones.show1 import Show1Cascade

    cascade = Show1Cascade(resolve_backbone(backbone), device)
    unet = cascade.stage_unet(cascade.backbone.base)
    scheduler = cascade.load_scheduler(cascade.backbone.base)
    alphas = scheduler.alphas_cumprod
    bad = [t for t in timesteps if not 0 <= t < len(alphas)]
    if bad:
        raise UserError(f"--timesteps: {bad} outside the schedule's 0..{len(alphas) - 1}")
    rng = np.random.default_rng(seed)
    held_out = held_out_motions(cascade.backbone)
    probed = motions or probed_motions(held_out)
    rows = []
    for motion in tqdm(probed, desc="shapes probe"):
        scenes = [random_scene(rng, motions=[motion], two_objects=0.0) for _ in range(clips)]
        x0 = keyframe_view(torch.stack([to_tensor(render(s, CLIP_FRAMES, SR_SIZE).frames) for s in scenes]))
        x0 = x0.to(cascade.device, cascade.dtype)
        reverse = MOTIONS[motion].reverse
        captions = [s.caption() for s in scenes] + [replace(s, motion=reverse).caption() for s in scenes]
        text = torch.cat(cascade.text_embeddings(captions))
        row = {"motion": motion, "reverse": reverse, "reverse_held_out": reverse in held_out}
        for t in timesteps:
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
            noise = noise.to(cascade.device, cascade.dtype)
            a = alphas[t].to(cascade.device)
            noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
            target = training_target(x0, noise, a, scheduler.config.prediction_type)
            log_ratio = log_loss_ratio(unet, noisy, torch.full((clips,), t, device=cascade.device), text, target)
            row[str(t)] = {"log_ratio": float(log_ratio.mean()), "true_lower": float((log_ratio > 0).float().mean())}
        rows.append(row)
    return {"backbone": backbone, "clips": clips, "seed": seed, "timesteps": timesteps, "rows": rows}


def table(report: dict) -> str:
    ts = [str(t) for t in report["timesteps"]]
    lines = [f"{'motion':14} {'against':14} " + " ".join(f"{'t=' + t:>14}" for t in ts)]
    for r in report["rows"]:
        against = r["reverse"] + ("*" if r["reverse_held_out"] else "")
        lines.append(f"{r['motion']:14} {against:14} " + " ".join(
            f"{r[t]['log_ratio']:+7.3f} ({r[t]['true_lower']:4.0%})" for t in ts))
    return "\n".join(lines + ["log(L_reversed / L_true), mean over clips (share of clips where the true caption "
                              "has the lower loss); * held out of training"])


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.shapes.probe", description=__doc__.split("\n\n")[1])
    p.add_argument("--backbone", default="shapes")
    p.add_argument("--clips", type=int, default=8, help="clips per motion")
    p.add_argument("--timesteps", default="900,600,300,100", help="comma-separated noise levels (0..999)")
    p.add_argument("--motions", default=None, help="comma-separated motions to probe (default: every trained "
                   "motion but bouncing, its own reversal)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the report (JSON) here")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    try:
        timesteps = [int(t) for t in args.timesteps.split(",")]
    except ValueError:
        raise UserError(f"--timesteps: {args.timesteps!r} is not a comma-separated list of integers") from None
    motions = [m.strip() for m in args.motions.split(",") if m.strip()] if args.motions else None
    unknown = [m for m in motions or [] if m not in MOTIONS or MOTIONS[m].reverse == m]
    if unknown:
        raise UserError(f"--motions: {', '.join(unknown)} not a motion with a distinct reversal; those are "
                        f"{', '.join(m for m in MOTIONS if MOTIONS[m].reverse != m)}")
    if args.clips < 1:
        raise UserError("--clips must be at least 1")
    if args.out and not args.out.parent.is_dir():
        raise UserError(f"{args.out}: --out's folder does not exist")
    report = probe(args.backbone, args.clips, timesteps, args.seed,
                   args.device or ("cuda" if torch.cuda.is_available() else "cpu"), motions)
    print(table(report))
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
