"""Scoring shared by `eval.run` and `eval.score`: every metric on a batch of videos, packed into records."""

from __future__ import annotations

from eval.errors import MetricUndefined
from eval.metrics import ClipMetric, MotionMetric, OracleMetric, spec_id


class Scorer:
    """CLIP metrics always; motion metrics when the item has a reference clip; the shapes-world oracle when
    one is given (benchmarks of that world ask for it)."""

    def __init__(self, clip: ClipMetric, motion: MotionMetric | None = None, oracle: OracleMetric | None = None):
        self.clip = clip
        self.motion = motion or MotionMetric()
        self.oracle = oracle
        self._metrics = [m for m in (self.clip, self.motion, self.oracle) if m is not None]
        self._ids = {field: spec_id({"metric": metric.name, **metric.spec()})
                     for metric in self._metrics for field in metric.fields}  # specs are fixed

    def specs(self) -> dict:
        return {m.name: m.spec() for m in self._metrics}

    def spec_ids(self) -> dict[str, str]:
        return dict(self._ids)

    def score_many(self, items: list[tuple]) -> list[dict]:
        """[(frames, prompt, reference frames or None[, reference prompt])] → the scoring part of each record."""
        clip_out = self.clip.score_many([(it[0], it[1]) for it in items])
        return [self.assemble(c, *self.score_rest(*it)) for c, it in zip(clip_out, items)]

    def score_rest(self, frames, prompt, reference=None, reference_prompt=None) -> list:
        """Outputs of the metrics after CLIP (motion needs a reference; the oracle runs when configured)."""
        out = [self.motion.score(frames, reference) if reference is not None else None]
        if self.oracle is not None:
            out.append(self.oracle.score(frames, prompt, reference, reference_prompt))
        return out

    def assemble(self, clip_out: tuple[dict, dict], *others: tuple[dict, dict] | None) -> dict:
        """Merge metric outputs into {metrics, undefined (field → reason), spec_ids, details}."""
        values, details = dict(clip_out[0]), dict(clip_out[1])
        for out in others:
            if out is not None:
                values.update(out[0])
                details.update(out[1])
        ids = self._ids
        metrics, undefined = {}, {}
        for k, v in values.items():
            if isinstance(v, MetricUndefined):
                metrics[k], undefined[k] = None, str(v)
            else:
                metrics[k] = v
        return {"metrics": metrics, "undefined": undefined, "spec_ids": {k: ids[k] for k in metrics},
                "details": details}
