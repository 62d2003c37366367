"""Scoring shared by `eval.run` and `eval.score`: every metric on a batch of videos, packed into records."""

from __future__ import annotations

import numpy as np

from eval.errors import MetricUndefined
from eval.metrics import ClipMetric, MotionMetric, spec_id


class Scorer:
    """CLIP metrics always; motion metrics when the item has a reference clip."""

    def __init__(self, clip: ClipMetric, motion: MotionMetric | None = None):
        self.clip = clip
        self.motion = motion or MotionMetric()
        self._ids = {field: spec_id({"metric": metric.name, **metric.spec()})
                     for metric in (self.clip, self.motion) for field in metric.fields}  # specs are fixed

    def specs(self) -> dict:
        return {"clip": self.clip.spec(), "motion": self.motion.spec()}

    def spec_ids(self) -> dict[str, str]:
        return dict(self._ids)

    def score_many(self, items: list[tuple[np.ndarray, str, np.ndarray | None]]) -> list[dict]:
        """[(frames, prompt, reference frames or None)] → the scoring part of each record."""
        clip_out = self.clip.score_many([(frames, prompt) for frames, prompt, _ in items])
        motion_out = [self.motion.score(frames, ref) if ref is not None else None for frames, _, ref in items]
        return [self.assemble(c, m) for c, m in zip(clip_out, motion_out)]

    def assemble(self, clip_out: tuple[dict, dict], motion_out: tuple[dict, dict] | None) -> dict:
        """Merge metric outputs into {metrics, undefined (field → reason), spec_ids, details}."""
        values, details = dict(clip_out[0]), dict(clip_out[1])
        if motion_out is not None:
            values.update(motion_out[0])
            details.update(motion_out[1])
        ids = self._ids
        metrics, undefined = {}, {}
        for k, v in values.items():
            if isinstance(v, MetricUndefined):
                metrics[k], undefined[k] = None, str(v)
            else:
                metrics[k] = v
        return {"metrics": metrics, "undefined": undefined, "spec_ids": {k: ids[k] for k in metrics},
                "details": details}
