"""Training data for the shapes cascade, drawn on the fly from the shapes world (eval.shapes.world).

One sample is a clip of CLIP_FRAMES frames at SR_SIZE px: the keyframe stage sees every second frame at
BASE_SIZE px, the interpolation stage the 3-frame windows between neighbouring keyframes, the super-
resolution stage 8-frame windows at both sizes. Some motions are held out of pre-training entirely and some
are rare, so adapting to them (VMC, the baselines) is a real test of motion transfer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from eval.errors import UserError, read_json
from eval.shapes.world import BACKGROUNDS, COLOURS, MOTIONS, SHAPES, random_scene, render

BASE_SIZE = 16
SR_SIZE = 32
NUM_KEYFRAMES = 8
CLIP_FRAMES = 2 * NUM_KEYFRAMES - 1  # one new frame between neighbouring keyframes
# motions held out of training unless a run names others (`vmc.shapes.train --held-out`; an exported cascade
# records its own set per stage in cascade.json, see `held_out_motions`: the shipped keyframe stage left out more)
HELD_OUT = ("zigzag_left", "circle_ccw")
SHIPPED = Path(__file__).resolve().parent / "weights" / "cascade.json"  # the shapes backbone shipped in the package
RARE = {"rotate_cw": 0.2, "rotate_ccw": 0.2}


def train_motions(held_out=HELD_OUT) -> tuple[str, ...]:
    return tuple(m for m in MOTIONS if m not in held_out)


def reversible(held_out=HELD_OUT) -> tuple[str, ...]:
    """Trained motions whose time reversal is another trained motion: a caption naming the reversal is a wrong
    one."""
    return tuple(m for m in train_motions(held_out) if MOTIONS[m].reverse not in (m, *held_out))


def held_out_motions(backbone) -> tuple[str, ...]:
    """The motions a shapes cascade's keyframe stage, the one that draws a motion from its caption, was never
    trained on: cascade.json's training.held_out (per stage; weights exported before it was recorded were
    trained without HELD_OUT)."""
    held_out = backbone.training.get("held_out", HELD_OUT)
    return tuple(held_out["keyframes"] if isinstance(held_out, dict) else held_out)


def shipped_held_out() -> tuple[str, ...]:
    """`held_out_motions` of the shapes backbone shipped in the package, as its cascade.json records them (the
    shapes benchmark's held-out cases)."""
    return held_out_motions(SimpleNamespace(training=read_json(SHIPPED).get("training", {})))


def check_held_out(names) -> tuple[str, ...]:
    unknown = [m for m in names if m not in MOTIONS]
    if unknown:
        raise UserError(f"--held-out: unknown motion(s) {', '.join(unknown)}; the world's motions are "
                        f"{', '.join(MOTIONS)}")
    if not train_motions(names):
        raise UserError("--held-out: that leaves no motion to train on")
    return tuple(names)


# the eight straight lines in order of angle: each one's neighbours lie 45 degrees either side
LINE_RING = ("right", "down_right", "down", "down_left", "left", "up_left", "up", "up_right")
VOCABULARY = ("a an and is are on background to the in of up down left right moving zigzagging bouncing falling "
              "rising growing shrinking rotating clockwise counterclockwise circle").split() + \
    [*SHAPES, *COLOURS, *BACKGROUNDS]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 T×H×W×3 → (3, T, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1


def downsample(video: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, T, H, W) → (B, 3, T, size, size) by area averaging (the renderer's own anti-aliasing)."""
    b, c, t, h, w = video.shape
    flat = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    return F.adaptive_avg_pool2d(flat, size).reshape(b, t, c, size, size).permute(0, 2, 1, 3, 4)


def keyframe_view(clips: torch.Tensor) -> torch.Tensor:
    """Clips (B, 3, CLIP_FRAMES, SR_SIZE, SR_SIZE) as the keyframe stage sees them: every second frame at
    BASE_SIZE px."""
    return downsample(clips[:, :, ::2], BASE_SIZE)


def sample_clips(rng: np.random.Generator, n: int, drop_caption: float = 0.1, invariant: float = 0.15,
                 held_out=HELD_OUT):
    """n clips (n, 3, CLIP_FRAMES, SR_SIZE, SR_SIZE) of the motions not `held_out` and their captions: full
    captions, with some replaced by the appearance-invariant form (VMC trains with it) or by "" (classifier-free
    guidance)."""
    clips, captions = [], []
    for _ in range(n):
        scene = random_scene(rng, train_motions(held_out), weights=RARE)
        clips.append(to_tensor(render(scene, CLIP_FRAMES, SR_SIZE).frames))
        u = rng.random()
        captions.append("" if u < drop_caption else scene.invariant_caption() if u < drop_caption + invariant
                        else scene.caption())
    return torch.stack(clips), captions


def sample_reversal_pairs(rng: np.random.Generator, n: int, invariant: float = 0.15, neighbour: float = 0.0,
                          held_out=HELD_OUT):
    """n clips of `reversible` motions with their captions and the captions of a wrong motion for the same
    appearance, in the same form, for the keyframe stage's reversal margin: the time-reversed motion, or, for a
    straight line with probability `neighbour`, a line 45 degrees off (the confusion sampling shows most)."""
    clips, captions, wrong_captions = [], [], []
    for _ in range(n):
        scene = random_scene(rng, reversible(held_out), weights=RARE)
        clips.append(to_tensor(render(scene, CLIP_FRAMES, SR_SIZE).frames))
        wrong = MOTIONS[scene.motion].reverse
        # no draw without a neighbour share, so the reversal-only data stream stays as the shipped run saw it
        if neighbour and scene.motion in LINE_RING and rng.random() < neighbour:
            line = LINE_RING[(LINE_RING.index(scene.motion) + rng.choice((-1, 1))) % len(LINE_RING)]
            wrong = wrong if line in held_out else line  # a held-out motion's caption stays out of training
        other = replace(scene, motion=wrong)
        short = rng.random() < invariant
        captions.append(scene.invariant_caption() if short else scene.caption())
        wrong_captions.append(other.invariant_caption() if short else other.caption())
    return torch.stack(clips), captions, wrong_captions
