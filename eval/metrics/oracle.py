"""Oracle metrics for the shapes world: what a video shows, read from its frames by colour segmentation, against
what its prompt asks for (the prompt is parsed with the world's caption grammar).

Every pixel takes the nearest colour of the world's palette (object colours and background colours); a texture
counts only where both of its colours show, so a plain field that happens to lie near one of them is read as the
nearest plain background instead. An object is the largest connected region of its colour; its shape is
classified from two rotation-invariant measures of that region (solidity: area over convex-hull area; fill:
area over the circle through its farthest pixel). Definitions and their validation against ground truth:
docs/METRICS.md.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from eval.errors import MetricUndefined
from eval.metrics.base import Field, Metric, Sample
from eval.shapes.world import COLOURS, PLAIN_BACKGROUNDS, TEXTURES, parse_caption

_OBJECT_NAMES = list(COLOURS)
_BG_NAMES = [*(f"bg:{n}" for n in PLAIN_BACKGROUNDS), *(f"bg:{n}:{k}" for n in TEXTURES for k in (0, 1))]
_PALETTE = np.array([*COLOURS.values(), *PLAIN_BACKGROUNDS.values(), *(c for n in TEXTURES for c in TEXTURES[n])],
                    np.float32)
_LABELS = [*_OBJECT_NAMES, *_BG_NAMES]
_PLAIN = np.array([_LABELS.index(f"bg:{n}") for n in PLAIN_BACKGROUNDS])
_TEXTURE_PAIRS = [(_LABELS.index(f"bg:{n}:0"), _LABELS.index(f"bg:{n}:1")) for n in TEXTURES]
TEXTURE_MIN_SHARE = 0.25  # a texture shows when its rarer colour has this share of its pixels (renderings: 0.5)
MIN_AREA = 0.01  # an object covers at least this fraction of the frame (and 3 pixels)
MOTION_EPS = 0.05  # below this displacement (frame units) the reference shows no trajectory


def palette_labels(frame: np.ndarray) -> np.ndarray:
    """H×W index into _LABELS of each pixel's nearest palette colour. A texture whose two colours are far from
    balanced in the frame is not there: a uniform dark-gray field would otherwise be read as the dark stripe of a
    striped background and fail a prompted black one. Its pixels take the nearest plain background colour."""
    d = ((frame[..., None, :].astype(np.float32) - _PALETTE) ** 2).sum(-1)
    labels = d.argmin(-1)
    for a, b in _TEXTURE_PAIRS:
        in_a, in_b = labels == a, labels == b
        n_a, n_b = int(in_a.sum()), int(in_b.sum())
        if min(n_a, n_b) < TEXTURE_MIN_SHARE * (n_a + n_b):
            mask = in_a | in_b
            labels[mask] = _PLAIN[d[mask][:, _PLAIN].argmin(-1)]
    return labels


def largest_region(mask: np.ndarray) -> np.ndarray | None:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return lab == k


def classify_shape(region: np.ndarray) -> str:
    """circle, square, triangle or star from a boolean mask (rotation-invariant)."""
    ys, xs = np.nonzero(region)
    area = float(len(xs))
    cx, cy = xs.mean(), ys.mean()
    r = math.sqrt(((xs - cx) ** 2 + (ys - cy) ** 2).max()) + 0.5
    fill = area / (math.pi * r * r)
    pts = np.stack([xs, ys], 1).astype(np.int32)
    hull = cv2.convexHull(pts)
    hull_area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + math.pi / 4  # pixel-centre hull → pixel area
    solidity = area / hull_area
    if solidity < 0.81:
        return "star"
    if fill > 0.755:
        return "circle"
    if fill > 0.565:
        return "square"
    return "triangle"


def object_track(frames: np.ndarray, colour: str | None, labels: list[np.ndarray] | None = None) -> np.ndarray:
    """T×3 (x, y, √area) in frame units of the object of `colour` (any object colour if None); NaN where absent.
    `labels`: the frames' palette_labels when already computed."""
    t, h, w = frames.shape[:3]
    out = np.full((t, 3), np.nan)
    for i, labels in enumerate(labels if labels is not None else map(palette_labels, frames)):
        mask = labels == _LABELS.index(colour) if colour else labels < len(_OBJECT_NAMES)
        region = largest_region(mask)
        if region is None or region.sum() < max(3, MIN_AREA * h * w):
            continue
        ys, xs = np.nonzero(region)
        out[i] = ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h, math.sqrt(len(xs) / (h * w)))
    return out


def trajectory_agreement(track: np.ndarray, reference: np.ndarray, samples: int = 32) -> float:
    """max(cos, 0) · √(magnitude ratio) of the two displacement trajectories (position and size relative to the
    first frame), resampled to a common time axis; 0 when the object is missing in over half the frames."""
    def prepare(tr):
        ok = ~np.isnan(tr[:, 0])
        if ok.sum() < max(2, len(tr) / 2):
            return None
        x = np.linspace(0, 1, len(tr))
        filled = np.stack([np.interp(x, x[ok], tr[ok, j]) for j in range(3)], 1)
        grid = np.linspace(0, 1, samples)
        res = np.stack([np.interp(grid, x, filled[:, j]) for j in range(3)], 1)
        return (res - res[0]).ravel()

    ref = prepare(reference)
    if ref is None or np.abs(ref).max() < MOTION_EPS:
        raise MetricUndefined("the reference shows no trajectory (no object, or it only rotates)")
    gen = prepare(track)
    if gen is None:
        return 0.0
    ng, nr = np.linalg.norm(gen), np.linalg.norm(ref)
    if ng < 1e-9:
        return 0.0
    cos = float(gen @ ref / (ng * nr))
    return max(cos, 0.0) * math.sqrt(min(ng, nr) / max(ng, nr))


class OracleMetric(Metric):
    """What a shapes-world video shows against what its prompt asks for. Runs when the benchmark asks for it
    (`metrics: {oracle: shapes}`) or with --oracle shapes; prompts outside the shapes grammar give
    MetricUndefined."""

    name = "oracle"
    fields = {
        "oracle_appearance": Field("mean over frames of the share of checks passed: background is the prompted "
                                   "one (most pixels), each prompted colour present, its region's shape as "
                                   "prompted", range=(0.0, 1.0), label="Oracle appearance"),
        "oracle_motion": Field("agreement of the object's trajectory (centre and size) with the reference "
                               "object's: max(cos, 0)·√(magnitude ratio)", range=(0.0, 1.0),
                               label="Oracle motion"),
    }
    default = False

    @classmethod
    def add_options(cls, group):
        group.add_argument("--oracle", choices=["shapes", "none"], default=None,
                           help="shapes-world oracle metrics (default: on for benchmarks that ask for them)")

    @classmethod
    def wanted(cls, options, defaults: dict) -> bool:
        return (getattr(options, "oracle", None) or defaults.get("oracle", "none")) == "shapes"

    def spec(self) -> dict:
        return {"palette": {k: list(v) for k, v in COLOURS.items()}, "min_area": MIN_AREA,
                "motion_eps": MOTION_EPS, "texture_min_share": TEXTURE_MIN_SHARE, "version": 2}

    def appearance(self, labels: list[np.ndarray], parsed: dict) -> tuple[float, list[float]]:
        """From each frame's palette_labels."""
        h, w = labels[0].shape
        bg = parsed["background"]
        bg_labels = [_LABELS.index(f"bg:{bg}")] if bg in PLAIN_BACKGROUNDS else \
            [_LABELS.index(f"bg:{bg}:{k}") for k in (0, 1)]
        per_frame = []
        for frame_labels in labels:
            checks = [float(np.isin(frame_labels, bg_labels).mean() >= 0.5)]
            for colour, shape in parsed["objects"]:
                region = largest_region(frame_labels == _LABELS.index(colour))
                present = region is not None and region.sum() >= max(3, MIN_AREA * h * w)
                checks += [float(present), float(present and classify_shape(region) == shape)]
            per_frame.append(float(np.mean(checks)))
        return float(np.mean(per_frame)), per_frame

    def score(self, sample: Sample) -> tuple[dict, dict]:
        frames, prompt, reference, reference_prompt = sample.frames, sample.prompt, sample.reference, \
            sample.reference_prompt
        parsed = parse_caption(prompt)
        values, details = {}, {}
        if parsed is None:
            why = MetricUndefined(f"prompt is not a shapes-world caption: {prompt!r}")
            return {"oracle_appearance": why, "oracle_motion": why}, {}
        labels = [palette_labels(f) for f in frames]  # shared by both fields
        if parsed["background"] is None or any(c is None for c, _ in parsed["objects"]):
            values["oracle_appearance"] = MetricUndefined("the prompt names no colour or background")
        else:
            values["oracle_appearance"], details["oracle_appearance_per_frame"] = self.appearance(labels, parsed)
        if reference is None:
            values["oracle_motion"] = MetricUndefined("no reference clip")
            return values, details
        ref_parsed = parse_caption(reference_prompt) if reference_prompt else None
        ref_colour = ref_parsed["objects"][0][0] if ref_parsed else None
        colour = parsed["objects"][0][0]
        track, ref_track = object_track(frames, colour, labels), object_track(reference, ref_colour)
        try:
            values["oracle_motion"] = trajectory_agreement(track, ref_track)
        except MetricUndefined as e:
            values["oracle_motion"] = e
        details["oracle_track"] = _json_track(track)
        details["oracle_reference_track"] = _json_track(ref_track)
        return values, details


def _json_track(track: np.ndarray) -> list:
    return [[None if math.isnan(v) else round(float(v), 4) for v in row] for row in track]
