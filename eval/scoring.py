"""Scoring shared by `eval.run`, `eval.score` and `eval.rescore`: the selected metrics on a batch of samples,
packed into the scoring part of a record."""

from __future__ import annotations

from eval.errors import MetricUndefined
from eval.metrics import Field, Metric, Sample, spec_id


class Scorer:
    """The metrics of a run. Each scores the samples it applies to (those that need a reference skip samples
    without one); metrics with a `batch_size` (CLIP) see many videos at once, the others one at a time."""

    def __init__(self, metrics: list[Metric]):
        self.metrics = list(metrics)
        self.batched = [m for m in self.metrics if m.batch_size]
        self.per_video = [m for m in self.metrics if not m.batch_size]
        self._ids = {field: spec_id({"metric": m.name, **m.spec()})
                     for m in self.metrics for field in m.fields}  # specs are fixed

    def specs(self) -> dict:
        return {m.name: m.spec() for m in self.metrics}

    def spec_ids(self) -> dict[str, str]:
        return dict(self._ids)

    def fields(self) -> dict[str, Field]:
        return {f: d for m in self.metrics for f, d in m.fields.items()}

    @property
    def batch_size(self) -> int:
        """Frames to gather before calling `score_batched` (1 when no metric batches)."""
        return min((m.batch_size for m in self.batched), default=1)

    @property
    def pins_memory(self) -> bool:
        """Whether a batched metric runs on a GPU, so that frames are best handed over in pinned memory."""
        return any(getattr(getattr(m, "device", None), "type", None) == "cuda" for m in self.batched)

    def score_many(self, samples: list[Sample]) -> list[dict]:
        """The scoring part of each sample's record."""
        return [self.assemble(a, b) for a, b in zip(self.score_batched(samples), map(self.score_rest, samples))]

    def score_rest(self, sample: Sample) -> list[tuple[dict, dict]]:
        """Outputs of the per-video metrics that apply to the sample (thread-safe: eval.score runs it on
        worker threads)."""
        return [m.score(sample) for m in self.per_video if m.applies(sample)]

    def score_batched(self, samples: list[Sample]) -> list[list[tuple[dict, dict]]]:
        """Outputs of the batched metrics, per sample."""
        out: list[list] = [[] for _ in samples]
        for m in self.batched:
            todo = [i for i, s in enumerate(samples) if m.applies(s)]
            for i, result in zip(todo, m.score_many([samples[i] for i in todo])):
                out[i].append(result)
        return out

    def assemble(self, *outputs: list[tuple[dict, dict]]) -> dict:
        """Merge metric outputs into {metrics, undefined (field → reason), spec_ids, details}."""
        values, details = {}, {}
        for group in outputs:
            for v, d in group:
                values.update(v)
                details.update(d)
        metrics, undefined = {}, {}
        for k, v in values.items():
            if isinstance(v, MetricUndefined):
                metrics[k], undefined[k] = None, str(v)
            else:
                metrics[k] = v
        return {"metrics": metrics, "undefined": undefined, "spec_ids": {k: self._ids[k] for k in metrics},
                "details": details}
