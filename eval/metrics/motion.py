"""Weight-free motion fidelity from dense optical flow (OpenCV Farnebäck), against the case's reference clip.

Both videos are resampled to a common frame count (the smaller of the two, uniform in time) and a common
size (a fixed height, the reference's aspect ratio), converted to grey, and their consecutive-frame flows
compared. Formulas: docs/METRICS.md.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from eval.errors import MetricUndefined
from eval.metrics.base import Field, Metric, Sample
from eval.video import sample_indices

MOTION = "oracle_motion"  # the shapes-world field that checks them
FARNEBACK = dict(pyr_scale=0.5, levels=5, winsize=15, iterations=3, poly_n=7, poly_sigma=1.5, flags=0)


def _prepare(frames: np.ndarray, num: int, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    out = []
    for i in sample_indices(len(frames), num):
        grey = cv2.cvtColor(np.ascontiguousarray(frames[i]), cv2.COLOR_RGB2GRAY)
        out.append(cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def common_geometry(frames: np.ndarray, reference: np.ndarray, height: int) -> tuple[int, tuple[int, int]]:
    """Where a video and its reference are compared: min(T_video, T_reference) frames, and (height, width) at
    the reference's aspect ratio."""
    rh, rw = reference.shape[1:3]
    return min(len(frames), len(reference)), (height, max(2, int(round(height * rw / rh))))


def optical_flow(grey: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 → (T−1, H, W, 2) float32 flow in pixels, (dx, dy) from frame t to t+1."""
    return np.stack([cv2.calcOpticalFlowFarneback(grey[t], grey[t + 1], None, **FARNEBACK)
                     for t in range(len(grey) - 1)])


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-6, v / np.maximum(n, 1e-6), 0.0)


class MotionMetric(Metric):
    """motion_direction_cos, motion_epe and motion_trajectory_cos of a video against its reference clip."""

    name = "motion"
    fields = {
        "motion_direction_cos": Field("mean cosine of flow directions over pixels moving in either video",
                                      range=(-1.0, 1.0), checked_by=MOTION, label="Flow direction"),
        "motion_epe": Field("mean flow end-point error over the same pixels, in pixels of the common size",
                            higher_is_better=False, range=(0.0, math.inf), checked_by=MOTION,
                            label="Flow EPE (px)"),
        "motion_trajectory_cos": Field("cosine between the per-step mean motion vectors of the two videos, "
                                       "layout-free", range=(-1.0, 1.0), checked_by=MOTION,
                                       label="Trajectory", headline=False),
    }
    needs_reference = True

    def __init__(self, height: int = 96, threshold: float = 0.5):
        self.height = height
        self.threshold = threshold

    def spec(self) -> dict:
        return {"flow": "opencv farneback " + ",".join(f"{k}={v}" for k, v in FARNEBACK.items()),
                "opencv": cv2.__version__, "frames": "uniform min(T_video, T_reference)",
                "size": f"height {self.height}, reference aspect ratio, INTER_AREA, grey (BT.601)",
                "moving_threshold_px": self.threshold, "dtype": "float32"}

    def score(self, sample: Sample):
        frames, reference = sample.frames, sample.reference
        num, size = common_geometry(frames, reference, self.height)
        if num < 2:
            undefined = MetricUndefined(f"motion needs at least 2 frames in both videos, got {num}")
            return {k: undefined for k in self.fields}, {}
        f_gen = optical_flow(_prepare(frames, num, size))
        f_ref = optical_flow(_prepare(reference, num, size))
        m_gen = np.linalg.norm(f_gen, axis=-1) > self.threshold
        m_ref = np.linalg.norm(f_ref, axis=-1) > self.threshold
        union = m_gen | m_ref
        values: dict = {}
        if union.any():
            cos = (_unit(f_gen) * _unit(f_ref)).sum(-1)
            values["motion_direction_cos"] = float(cos[union].mean())
            values["motion_epe"] = float(np.linalg.norm(f_gen - f_ref, axis=-1)[union].mean())
        else:
            reason = MetricUndefined("neither video has pixels moving more than "
                                     f"{self.threshold} px per step")
            values["motion_direction_cos"] = values["motion_epe"] = reason
        traj_gen = self.trajectory(f_gen, m_gen)
        traj_ref = self.trajectory(f_ref, m_ref)
        n_ref, n_gen = np.linalg.norm(traj_ref), np.linalg.norm(traj_gen)
        if n_ref < 1e-6:
            values["motion_trajectory_cos"] = MetricUndefined("the reference shows no motion")
        else:
            values["motion_trajectory_cos"] = float((traj_gen * traj_ref).sum() / (n_gen * n_ref)) if n_gen > 1e-6 \
                else 0.0
        details = {"motion_size": list(size), "motion_frames": num,
                   "trajectory": [[round(float(v), 4) for v in step] for step in traj_gen],
                   "trajectory_reference": [[round(float(v), 4) for v in step] for step in traj_ref]}
        return values, details

    @staticmethod
    def trajectory(flow: np.ndarray, moving: np.ndarray) -> np.ndarray:
        """Per step, the mean flow vector over that step's moving pixels (zero where nothing moves): (T−1, 2)."""
        counts = moving.sum(axis=(1, 2))
        sums = (flow * moving[..., None]).sum(axis=(1, 2))
        return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
