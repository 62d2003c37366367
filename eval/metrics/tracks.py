"""Motion fidelity on point tracks (Yatim et al., CVPR 2024, "DMT"): how well the directions of a video's point
tracks match those of the reference clip's, track against best-matching track, so layout does not matter.

`motion_fidelity(tracks, reference_tracks, form)` is the pure score on (N, T, 2) arrays, in the forms
"symmetric" (the paper's two-sided form), "dmt" (the official code's number, quirks included), and MTBench's
"mtbench" and "mtbench_hybrid" (DeT's `evaluation.py`, on coordinates normalised by width and height). Tracks
come from a `Tracker`: `LKTracker` (default, weight-free, OpenCV pyramidal Lucas–Kanade) or
`CoTrackerTracker` (a local CoTracker checkout and checkpoint, never downloaded). Both videos are resampled to
a common frame count and size exactly as the Farnebäck flow metrics do. Formulas: docs/METRICS.md.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from eval.errors import MetricUndefined, UserError
from eval.metrics.base import Field, Metric, Sample
from eval.metrics.motion import MOTION, _prepare, common_geometry
from eval.video import sample_indices

FORMS = ("symmetric", "dmt", "mtbench", "mtbench_hybrid")
STATIC_RULE = "a track with an exactly zero displacement at any step is left out (its direction is undefined)"
# MTBench (Shi-qingyu/DeT, evaluation.py): its own rules, and where this suite's number departs from it
MTBENCH_STILL_RULE = ("a zero vector (a still step, or an initial position at the origin) counts as direction 0: "
                      "cosine 0 with every vector (MTBench divides by its zero norm and gets NaN)")
MTBENCH_LENGTHS = "the longer track set is read at torch.linspace(0, T_long − 1, T_short).to(int32) (MTBench's rule)"
MTBENCH_REGION = ("where the case has a mask of the reference's first frame: the grid points inside its bounding "
                  "box, rows and columns from the first nonzero to the last, the last excluded (MTBench's slicing), "
                  "scaled to each video, on both videos; else the whole frame")
HYBRID_TRACKS = 50  # MTBench's size of the subsample of its distance term
HYBRID_SEED = 0  # MTBench draws the subsample unseeded; here from torch.Generator().manual_seed(HYBRID_SEED)


@dataclass(frozen=True)
class Fidelity:
    """A motion-fidelity value with the counts behind it. `value` is a float, or a MetricUndefined with its
    reason when no moving track is left on one side (never NaN)."""

    value: float | MetricUndefined
    form: str
    n_tracks: int  # moving tracks of the video that were scored
    n_reference: int  # moving tracks of the reference that were scored
    n_static: int  # tracks of the video left out as static
    n_static_reference: int  # tracks of the reference left out as static

    @property
    def defined(self) -> bool:
        return not isinstance(self.value, MetricUndefined)


def _directions(tracks: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit step directions (K, T−1, 2) of the moving tracks, and the indices of those tracks."""
    if tracks.ndim != 3 or tracks.shape[2] != 2 or tracks.shape[1] < 2:
        raise ValueError(f"{what}: tracks are (N, T, 2) with T ≥ 2, got shape {tracks.shape}")
    if not np.isfinite(tracks).all():
        raise ValueError(f"{what}: tracks hold non-finite coordinates")
    steps = np.diff(tracks.astype(np.float64), axis=1)
    norms = np.linalg.norm(steps, axis=-1)
    keep = np.flatnonzero((norms > 0).all(axis=1))
    return steps[keep] / norms[keep, :, None], keep


def matched_lengths(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two track sets of T_a and T_b frames at a common length, as MTBench matches them: the longer set is read
    at the frames torch.linspace(0, T_long − 1, T_short) truncated to int32 (float32 positions, as torch
    computes them)."""
    import torch

    ta, tb = a.shape[1], b.shape[1]
    if ta == tb:
        return a, b
    idx = torch.linspace(0, max(ta, tb) - 1, min(ta, tb), dtype=torch.float32).to(torch.int32).numpy()
    return (a[:, idx], b) if ta > tb else (a, b[:, idx])


def _mtbench_elements(tracks: np.ndarray) -> np.ndarray:
    """Each track as [initial position, displacement of each step] (N, T, 2), every vector at unit length and a
    zero vector left at zero (MTBENCH_STILL_RULE)."""
    x = np.concatenate([tracks[:, :1], np.diff(tracks, axis=1)], axis=1)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def hybrid_indices(n: int, m: int, seed: int = HYBRID_SEED, size: int = HYBRID_TRACKS) -> np.ndarray:
    """The tracks of MTBench's distance term: `size` indices drawn with replacement, as MTBench's
    torch.randint(0, N, (50,)) but from a generator seeded with `seed` and from range(min(N, M)), so that the same
    indices address both sets (MTBench draws from range(N) and indexes both with them)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, min(n, m), (size,), generator=g).numpy()


def mean_point_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """D[i, j] = mean over all frame pairs (t, s) of ‖a_i(t) − b_j(s)‖ (MTBench's "Fréchet" distance: scipy's
    cdist of the two tracks' points, averaged), for (I, T, 2) and (J, T, 2)."""
    from scipy.spatial.distance import cdist

    t = a.shape[1]
    d = cdist(a.reshape(-1, 2), b.reshape(-1, 2))  # (I·T, J·T)
    return d.reshape(len(a), t, len(b), t).mean(axis=(1, 3))


def _mtbench(a: np.ndarray, b: np.ndarray, form: str, seed: int) -> Fidelity:
    """MTBench's motion fidelity of tracks a against reference tracks b (both (N, T, 2), normalised coordinates,
    any frame counts)."""
    for what, x in (("tracks", a), ("reference tracks", b)):
        if x.ndim != 3 or x.shape[2] != 2 or x.shape[1] < 2:
            raise ValueError(f"{what}: tracks are (N, T, 2) with T ≥ 2, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{what}: tracks hold non-finite coordinates")
    a, b = matched_lengths(a.astype(np.float64), b.astype(np.float64))
    u, v = _mtbench_elements(a), _mtbench_elements(b)
    still = [int((np.linalg.norm(x, axis=-1) == 0).any(axis=1).sum()) for x in (u, v)]
    counts = dict(form=form, n_tracks=len(a), n_reference=len(b), n_static=still[0], n_static_reference=still[1])
    empty = [w for w, x in (("video", a), ("reference", b)) if not len(x)]
    if empty:
        return Fidelity(MetricUndefined("; ".join(f"the {w} has no track" for w in empty)), **counts)
    s = u.reshape(len(u), -1) @ v.reshape(len(v), -1).T / u.shape[1]
    value = s.max(axis=1).mean()
    if form == "mtbench_hybrid":
        ids = hybrid_indices(len(a), len(b), seed)
        value = 0.5 * value + 0.5 * (1.0 / (1.0 + mean_point_distance(a[ids], b[ids]))).max(axis=1).mean()
    return Fidelity(float(value), **counts)


def motion_fidelity(tracks, reference_tracks, form: str = "symmetric", seed: int = HYBRID_SEED) -> Fidelity:
    """Motion fidelity of `tracks` (N, T, 2) against `reference_tracks` (M, T, 2), pixel coordinates (x, y).

    S[n, m] = mean over steps t of ⟨d̂ₙ(t), d̂'ₘ(t)⟩, d̂ the unit displacement of a step.
    - "symmetric": ½ (mean over n of maxₘ S + mean over m of maxₙ S), −1..1, 1 for identical tracks.
    - "dmt": mean over n of maxₘ (S − I), I = 1 where the original track indices n and m are equal: the
      official code's number (one direction, its identity subtraction), −2..1.
    Static tracks (STATIC_RULE) are left out and counted; float64 throughout.

    MTBench's forms take tracks in coordinates divided by each video's width and height, of any frame counts
    (matched_lengths). Each track becomes [initial position, step displacements], every vector at unit length;
    S'[n, m] = mean over those T vectors of their dot products.
    - "mtbench": mean over n of maxₘ S', −1..1: MTBench's number wherever it is finite; where MTBench has a
      zero vector (a still step) and so NaN, MTBENCH_STILL_RULE keeps it finite. Still tracks are kept and
      counted in n_static / n_static_reference.
    - "mtbench_hybrid": ½ "mtbench" + ½ mean over i of maxⱼ 1/(1 + D[i, j]), D the mean_point_distance of the
      50 tracks of hybrid_indices(N, M, seed) of each set, −0.5..1."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    a, b = np.asarray(tracks), np.asarray(reference_tracks)
    if form.startswith("mtbench"):
        return _mtbench(a, b, form, seed)
    if a.ndim == 3 and b.ndim == 3 and a.shape[1] != b.shape[1]:
        raise ValueError(f"both track sets need the same frame count, got {a.shape[1]} and {b.shape[1]}")
    u, keep_a = _directions(a, "tracks")
    v, keep_b = _directions(b, "reference tracks")
    counts = dict(form=form, n_tracks=len(keep_a), n_reference=len(keep_b), n_static=len(a) - len(keep_a),
                  n_static_reference=len(b) - len(keep_b))
    reasons = [f"the {w} has no moving track ({n} tracks, all static)" if n else f"the {w} has no track"
               for w, n, k in (("video", len(a), keep_a), ("reference", len(b), keep_b)) if not len(k)]
    if reasons:
        return Fidelity(MetricUndefined("; ".join(reasons)), **counts)
    steps = u.shape[1]
    s = u.reshape(len(u), -1) @ v.reshape(len(v), -1).T / steps
    if form == "dmt":
        value = (s - (keep_a[:, None] == keep_b[None, :])).max(axis=1).mean()
    else:
        value = 0.5 * (s.max(axis=1).mean() + s.max(axis=0).mean())
    return Fidelity(float(value), **counts)


# trackers --------------------------------------------------------------------------------------------------
Box = tuple  # (first row, row after the last, first column, column after the last, mask height, mask width)


def mask_box(mask: np.ndarray) -> Box | None:
    """MTBench's region from a foreground mask: the rows and columns of its nonzero pixels from the first to the
    last, the last excluded (MTBench sets box_mask[min:max, min:max]), with the mask's size; None for an empty
    mask."""
    rows, cols = np.nonzero(mask)
    if not len(rows):
        return None
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()), *map(int, mask.shape[:2])


def in_box(points: np.ndarray, size: tuple[int, int], box: Box) -> np.ndarray:
    """Which (x, y) points of a frame of `size` fall in `box` once scaled to the mask's size."""
    r0, r1, c0, c1, mh, mw = box
    x, y = points[..., 0] * mw / size[1], points[..., 1] * mh / size[0]
    return (x >= c0) & (x < c1) & (y >= r0) & (y < r1)


class Tracker(ABC):
    """Point tracks of a video resampled to `num` frames of `size` (height, width): (N, num, 2) float32 (x, y)
    pixels of that size, every track complete (lost points are dropped, not padded). With a `box`, only the
    grid points inside it are tracked."""

    height = 96

    @abstractmethod
    def track(self, frames: np.ndarray, num: int, size: tuple[int, int], box: Box | None = None) -> np.ndarray:
        """The tracks of `frames` (see the class)."""

    @abstractmethod
    def spec(self) -> dict:
        """Everything that produced the tracks."""

    def _geometry_spec(self) -> dict:
        return {"frames": "uniform min(T_video, T_reference)",
                "size": f"height {self.height}, reference aspect ratio, INTER_AREA"}


class LKTracker(Tracker):
    """Weight-free tracks: a grid on the first frame followed with pyramidal Lucas–Kanade frame to frame, on the
    same grey frames the Farnebäck metrics see. A point is lost (its whole track dropped) when LK reports
    failure, it leaves the frame, or tracking it back lands more than `fb_px` from where it started the step."""

    def __init__(self, grid: int = 24, window: int = 15, levels: int = 3, fb_px: float = 1.0, height: int = 96):
        self.grid, self.window, self.levels, self.fb_px, self.height = grid, window, levels, fb_px, height
        self._lk = dict(winSize=(window, window), maxLevel=levels,
                        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01))

    def spec(self) -> dict:
        return {"method": "opencv pyramidal lucas-kanade, frame to frame, forward-backward check",
                "grid": f"{self.grid}x{self.grid} cell centres of the first frame", "window": self.window,
                "levels": self.levels, "criteria": "30 iterations or 0.01 px", "fb_threshold_px": self.fb_px,
                "opencv": cv2.__version__, "colour": "grey (BT.601)", **self._geometry_spec()}

    def grid_points(self, size: tuple[int, int]) -> np.ndarray:
        h, w = size
        xs, ys = (np.arange(self.grid) + 0.5) * w / self.grid, (np.arange(self.grid) + 0.5) * h / self.grid
        return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)

    def track(self, frames: np.ndarray, num: int, size: tuple[int, int], box: Box | None = None) -> np.ndarray:
        grey = _prepare(frames, num, size)
        h, w = size
        pts = self.grid_points(size)
        if box is not None:
            pts = pts[in_box(pts, size, box)]
        out = np.empty((len(pts), num, 2), np.float32)
        out[:, 0] = pts
        alive = np.arange(len(pts))
        for t in range(num - 1):
            if not len(alive):
                break
            p0 = out[alive, t].reshape(-1, 1, 2)
            p1, ok1, _ = cv2.calcOpticalFlowPyrLK(grey[t], grey[t + 1], p0, None, **self._lk)
            back, ok2, _ = cv2.calcOpticalFlowPyrLK(grey[t + 1], grey[t], p1, None, **self._lk)
            p1, back = p1.reshape(-1, 2), back.reshape(-1, 2)
            good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (np.linalg.norm(back - p0.reshape(-1, 2), axis=1)
                                                              <= self.fb_px)
            good &= (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
            out[alive[good], t + 1] = p1[good]
            alive = alive[good]
        return out[alive]


COTRACKER_CHECKPOINTS = {"cotracker2": "cotracker2.pth", "cotracker2v1": "cotracker2v1.pth",
                         "cotracker3_offline": "scaled_offline.pth"}
COTRACKER_REPO = "https://github.com/facebookresearch/co-tracker"


class CoTrackerTracker(Tracker):
    """CoTracker on a grid of the first frame (the official code's tracker, 55×55), from a local checkout and
    checkpoint only: by default the torch hub cache (<hub dir>/facebookresearch_co-tracker_main and
    <hub dir>/checkpoints/<file>). Nothing is downloaded; anything missing is a UserError saying how to get it.
    Visibility is ignored, as in the official code."""

    def __init__(self, repo: str | Path | None = None, checkpoint: str | Path | None = None,
                 model: str = "cotracker2", grid: int = 55, device: str = "cpu", height: int = 96):
        import torch

        if model not in COTRACKER_CHECKPOINTS:
            raise UserError(f"unknown CoTracker model {model!r}; one of {', '.join(COTRACKER_CHECKPOINTS)}")
        hub = Path(torch.hub.get_dir())
        self.repo = Path(repo) if repo else hub / "facebookresearch_co-tracker_main"
        self.checkpoint = Path(checkpoint) if checkpoint else hub / "checkpoints" / COTRACKER_CHECKPOINTS[model]
        self.model_name, self.grid, self.device, self.height = model, grid, device, height
        if not (self.repo / "hubconf.py").is_file():
            raise UserError(f"CoTracker tracker: no CoTracker checkout at {self.repo} (no hubconf.py); "
                            f"git clone {COTRACKER_REPO} there, or pass repo=<checkout>")
        if not self.checkpoint.is_file():
            raise UserError(f"CoTracker tracker: checkpoint {self.checkpoint} not found; download "
                            f"https://huggingface.co/facebook/cotracker/resolve/main/{self.checkpoint.name} "
                            f"(cotracker3: facebook/cotracker3) there, or pass checkpoint=<file>")
        self.predictor = torch.hub.load(str(self.repo), model, source="local", pretrained=False)
        self.predictor.model.load_state_dict(torch.load(self.checkpoint, map_location="cpu"))
        self.predictor = self.predictor.to(device).eval()
        self._sha = hashlib.sha256(self.checkpoint.read_bytes()).hexdigest()[:16]

    def spec(self) -> dict:
        return {"method": f"cotracker {self.model_name}, offline, visibility ignored",
                "checkpoint": f"{self.checkpoint.name} sha256:{self._sha}", "grid": f"{self.grid}x{self.grid}",
                "colour": "rgb", **self._geometry_spec()}

    def track(self, frames: np.ndarray, num: int, size: tuple[int, int], box: Box | None = None) -> np.ndarray:
        import torch

        h, w = size
        rgb = np.stack([cv2.resize(np.ascontiguousarray(frames[i]), (w, h), interpolation=cv2.INTER_AREA)
                        for i in sample_indices(len(frames), num)])
        video = torch.from_numpy(rgb).permute(0, 3, 1, 2)[None].float().to(self.device)
        region = {}
        if box is not None:  # CoTracker keeps the grid points where its segm_mask is set (MTBench's box mask)
            pixels = np.stack(np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5), -1)
            mask = torch.from_numpy(in_box(pixels, size, box).astype(np.float32))[None, None].to(self.device)
            region = {"segm_mask": mask}
        with torch.no_grad():
            tracks, _ = self.predictor(video, grid_size=self.grid, **region)
        return tracks[0].permute(1, 0, 2).cpu().numpy().astype(np.float32)


# metric ----------------------------------------------------------------------------------------------------
def score_tracks(frames: np.ndarray, reference_frames: np.ndarray, tracker: Tracker | None = None,
                 form: str = "symmetric") -> Fidelity:
    """Track both videos (uint8 T×H×W×3) on their common geometry and score them."""
    tracker = tracker or LKTracker()
    num, size = common_geometry(frames, reference_frames, tracker.height)
    return motion_fidelity(tracker.track(frames, num, size), tracker.track(reference_frames, num, size), form)


def _subsample(tracks: np.ndarray, keep: int) -> list:
    """At most `keep` tracks, evenly spread over the grid order, rounded to 0.01 px (for a drill-down drawing)."""
    idx = np.unique(np.linspace(0, len(tracks) - 1, min(keep, len(tracks))).round().astype(int))
    return np.round(tracks[idx].astype(np.float64), 2).tolist()


def sample_tracks(tracker: Tracker, sample: Sample, num: int | tuple[int, int], size: tuple[int, int],
                  box: Box | None = None):
    """The tracks of the sample's video and reference at `num` frames (one count, or one for each) of `size`
    (in `box`), kept in the sample's memo: the tracks metrics of one sample track each video once for each
    geometry (the `tracks` metric's common frame count is MTBench's own count whenever both videos have as many
    frames)."""
    nums = num if isinstance(num, tuple) else (num, num)
    out = []
    for which, frames, n in (("video", sample.frames, nums[0]), ("reference", sample.reference, nums[1])):
        key = ("tracks", tracker, which, n, tuple(size), box)
        if key not in sample.memo:
            sample.memo[key] = tracker.track(frames, n, size, box) if box else tracker.track(frames, n, size)
        out.append(sample.memo[key])
    return out


@lru_cache(maxsize=4)
def tracker_from_option(text: str, device: str) -> Tracker:
    """The tracker `--tracker` names, one instance per setting (the tracks metrics share it: CoTracker loads once)."""
    kind, _, rest = text.partition(":")
    model, _, grid = rest.partition(":")
    if kind == "lk" and not rest:
        return LKTracker()
    if kind == "cotracker" and (not grid or (grid.isdigit() and int(grid) >= 2)):
        return CoTrackerTracker(model=model or "cotracker2", device=device, **({"grid": int(grid)} if grid else {}))
    raise UserError(f"--tracker: expected lk or cotracker[:MODEL[:GRID]], got {text!r}")


class TrackMotionMetric(Metric):
    """motion_fidelity and motion_fidelity_dmt of a video against its reference clip, from point tracks."""

    name = "tracks"
    fields = {
        "motion_fidelity": Field("the paper's two-sided motion fidelity: mean best-match cosine of step "
                                 "directions, video tracks to reference tracks and back, averaged",
                                 range=(-1.0, 1.0), checked_by=MOTION, label="Motion fidelity"),
        "motion_fidelity_dmt": Field("the official DMT code's number: video tracks to reference tracks only, with "
                                     "its identity-matrix subtraction", range=(-2.0, 1.0), checked_by=MOTION,
                                     label="Motion fidelity (DMT code)", headline=False),
    }
    needs_reference = True
    _forms = {"motion_fidelity": "symmetric", "motion_fidelity_dmt": "dmt"}

    @classmethod
    def add_options(cls, group):
        group.add_argument("--tracker", default="lk", metavar="lk|cotracker[:MODEL[:GRID]]",
                           help="point tracker of the motion_fidelity fields: lk (default, weight-free OpenCV "
                                "Lucas-Kanade) or cotracker (a local checkout and checkpoint in the torch hub "
                                f"cache; MODEL one of {', '.join(COTRACKER_CHECKPOINTS)}, default cotracker2; "
                                "GRID points a side, default 55; MTBench's: cotracker:cotracker3_offline:50)")

    @classmethod
    def from_options(cls, options, defaults: dict, device: str | None) -> "TrackMotionMetric":
        return cls(tracker_from_option(options.tracker, device or "cpu"))

    def __init__(self, tracker: Tracker | None = None, detail_tracks: int = 64):
        self.tracker = tracker or LKTracker()
        self.detail_tracks = detail_tracks

    def spec(self) -> dict:
        return {"tracker": self.tracker.spec(), "static": STATIC_RULE, "dtype": "float64",
                "forms": dict(self._forms)}

    def score(self, sample: Sample):
        frames, reference = sample.frames, sample.reference
        num, size = common_geometry(frames, reference, self.tracker.height)
        if num < 2:
            undefined = MetricUndefined(f"motion fidelity needs at least 2 frames in both videos, got {num}")
            return {k: undefined for k in self.fields}, {}
        gen, ref = sample_tracks(self.tracker, sample, num, size)
        results = {field: motion_fidelity(gen, ref, form) for field, form in self._forms.items()}
        # a video in which nothing moves scores 0 against a moving reference (a zero direction has cosine 0 with
        # every reference direction) rather than undefined, so that still videos are not dropped from a mean
        values = {field: 0.0 if r.n_tracks == 0 and r.n_reference > 0 else r.value for field, r in results.items()}
        r = results["motion_fidelity"]
        counts = {"n_tracks": r.n_tracks, "n_reference": r.n_reference, "n_static": r.n_static,
                  "n_static_reference": r.n_static_reference}
        details = {"tracks_size": list(size), "tracks_frames": num, "tracks_counts": counts,
                   "tracks": _subsample(gen, self.detail_tracks),
                   "tracks_reference": _subsample(ref, self.detail_tracks)}
        return values, details


class MTBenchTrackMetric(Metric):
    """MTBench's motion fidelity (DeT's `evaluation.py`) of a video against its reference clip, from the tracker
    of `--tracker`: each video tracked over all its own frames at the common size, coordinates divided by that
    width and height, lengths matched by MTBench's rule. A metric of its own so that the `tracks` metric's spec
    (and its fields' spec ids) stay as they were; computed when asked for (`--metrics`) or when the benchmark's
    `metrics` section sets `mtbench: true`."""

    name = "tracks_mtbench"
    fields = {
        "motion_fidelity_mtbench": Field("MTBench's motion fidelity: mean over video tracks of the best mean cosine "
                                         "of [initial position, steps] with a reference track (normalised "
                                         "coordinates; a still step counts as cosine 0)", range=(-1.0, 1.0),
                                         checked_by=MOTION),
        "motion_fidelity_mtbench_hybrid": Field("MTBench's hybrid: ½ motion_fidelity_mtbench + ½ the best "
                                                "1/(1 + mean point distance) over 50 tracks drawn from a fixed "
                                                "seed", range=(-0.5, 1.0), checked_by=MOTION),
    }
    needs_reference = True
    _forms = {"motion_fidelity_mtbench": "mtbench", "motion_fidelity_mtbench_hybrid": "mtbench_hybrid"}

    @classmethod
    def wanted(cls, options, defaults: dict) -> bool:
        return bool(defaults.get("mtbench"))

    @classmethod
    def from_options(cls, options, defaults: dict, device: str | None) -> "MTBenchTrackMetric":
        return cls(tracker_from_option(options.tracker, device or "cpu"))  # --tracker: the tracks metric's option

    def __init__(self, tracker: Tracker | None = None, seed: int = HYBRID_SEED):
        self.tracker = tracker or LKTracker()
        self.seed = seed

    def spec(self) -> dict:
        tracker = {**self.tracker.spec(), "frames": "all frames of each video"}
        return {"tracker": tracker, "coordinates": "x / width, y / height of the common size", "region": MTBENCH_REGION,
                "lengths": MTBENCH_LENGTHS, "still": MTBENCH_STILL_RULE,
                "hybrid": {"tracks": HYBRID_TRACKS, "seed": self.seed,
                           "draw": "torch.randint(0, min(N, M), (50,), torch.Generator().manual_seed(seed)), "
                                   "the same indices in both sets",
                           "distance": "mean Euclidean distance over all pairs of the two tracks' points"},
                "dtype": "float64", "forms": dict(self._forms), "source": "Shi-qingyu/DeT evaluation.py"}

    def score(self, sample: Sample):
        frames, reference = sample.frames, sample.reference
        if min(len(frames), len(reference)) < 2:
            undefined = MetricUndefined(f"motion fidelity needs at least 2 frames in both videos, got "
                                        f"{len(frames)} and {len(reference)}")
            return {k: undefined for k in self.fields}, {}
        box = None
        if sample.reference_mask is not None:
            box = mask_box(sample.reference_mask)
            if box is None:
                undefined = MetricUndefined("the case's mask of the reference is empty (MTBench's box is undefined)")
                return {k: undefined for k in self.fields}, {}
        _, size = common_geometry(frames, reference, self.tracker.height)
        scale = np.array([size[1], size[0]], np.float64)  # (x, y) ÷ (width, height)
        gen, ref = (t / scale for t in sample_tracks(self.tracker, sample, (len(frames), len(reference)), size, box))
        results = {field: motion_fidelity(gen, ref, form, self.seed) for field, form in self._forms.items()}
        r = results["motion_fidelity_mtbench"]
        counts = {"n_tracks": r.n_tracks, "n_reference": r.n_reference, "n_still": r.n_static,
                  "n_still_reference": r.n_static_reference}
        # as in the tracks metric: a video with no track at all (the LK tracker loses every point of a blank
        # video) scores 0 against a reference with tracks, so that it is not dropped from a mean
        values = {f: 0.0 if r.n_tracks == 0 and r.n_reference > 0 else r.value for f, r in results.items()}
        return values, {"tracks_mtbench_counts": counts, "tracks_mtbench_box": list(box[:4]) if box else None}
