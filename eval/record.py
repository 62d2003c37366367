"""A record: one scored video, one line of results.jsonl.

Two commands write them. `eval.run` records a benchmark item (`case` and `seed`, the video relative to the run
folder, `timing`, `protocol`, optional `provenance`); `eval.score` records a video of any folder (the video
relative to its --videos folder, and always a `reference`, null when there is none; no case, seed or timing).
`Record.from_json` reads every form still on disk and `to_json` writes each back key for key as it came, so
rewriting a file changes nothing but what was meant to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Timing:
    """Seconds an eval.run item took: generating its video (None for a video made before generation times
    were kept beside it), scoring it, and adapting its method to its case."""
    generate_s: float | None = None
    score_s: float | None = None
    adapt_s: float | None = None

    @classmethod
    def from_json(cls, data: dict) -> Timing:
        return cls(data.get("generate_s"), data.get("score_s"), data.get("adapt_s"))

    def to_json(self) -> dict:
        return {"generate_s": self.generate_s, "score_s": self.score_s, "adapt_s": self.adapt_s}


@dataclass(frozen=True)
class Record:
    """One scored video; what a form of record does not hold is None (or empty)."""
    key: str
    method: str
    prompt: str
    video: str  # eval.run: relative to the run folder; eval.score: relative to its --videos folder
    metrics: dict = field(default_factory=dict)  # field → value, None where undefined
    undefined: dict = field(default_factory=dict)  # field → why it is undefined
    spec_ids: dict = field(default_factory=dict)  # field → the id of the spec it was measured under
    details: dict = field(default_factory=dict)  # per-video series behind the metrics (the dashboard draws them)
    case: str | None = None  # eval.run only
    seed: int | None = None  # eval.run only
    reference: str | None = None  # eval.score only: the reference clip, stored as run.json's `paths` says
    num_frames: int | None = None
    fps: float | None = None
    size: list | None = None  # [height, width]
    timing: Timing | None = None
    protocol: dict | None = None  # fair-protocol facts of the method (eval.run records since they were kept)
    provenance: dict | None = None  # where an external method's video came from

    @classmethod
    def from_json(cls, data: dict) -> Record:
        """A record from its JSON object (a TypeError when it lacks one of key, method, prompt, video)."""
        given = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if given.get("timing") is not None:
            given["timing"] = Timing.from_json(given["timing"])
        return cls(**given)

    def to_json(self) -> dict:
        """The JSON object of results.jsonl: what is None is left out, except an eval.score record's reference."""
        out = {"key": self.key, "method": self.method, "case": self.case, "prompt": self.prompt, "seed": self.seed,
               "video": self.video, "reference": self.reference, "num_frames": self.num_frames, "fps": self.fps,
               "size": self.size, "metrics": self.metrics, "undefined": self.undefined, "spec_ids": self.spec_ids,
               "details": self.details, "timing": self.timing.to_json() if self.timing else None,
               "protocol": self.protocol, "provenance": self.provenance}
        return {k: v for k, v in out.items() if v is not None or (k == "reference" and self.case is None)}

    @property
    def unit_case(self) -> str:
        """The case the record counts under: its benchmark case (eval.run), else its reference clip (eval.score:
        the videos of one reference are one case), else its prompt."""
        return self.case or self.reference or self.prompt

    def unit(self, kind: str = "prompt") -> tuple:
        """The unit (see eval.results.UNITS) the record belongs to: its case, target prompt or video."""
        return {"case": (self.unit_case,), "prompt": (self.unit_case, self.prompt),
                "video": (self.unit_case, self.prompt, self.seed)}[kind]

    @property
    def protocol_facts(self) -> dict[str, float]:
        """The numeric fair-protocol facts, generation time included, as summary.csv names them."""
        facts = {f"protocol.{k}": v for k, v in (self.protocol or {}).items() if isinstance(v, (int, float))}
        if self.timing and self.timing.generate_s is not None:
            facts["protocol.generate_s"] = self.timing.generate_s
        return facts
