"""The method registry and the built-in methods.

A method follows one contract: `adapt(case) -> state` (may train; caches under `self.cache_dir`, keyed by
the case's fingerprint and the method's config, so reruns skip it) and `generate(state, prompt, seed) ->
Video`. `vmc` and `baselines` register theirs through the `vmc_suite.methods` entry-point group, so `eval`
never imports them. A method is named `name` or `name:ARG` on the command line (e.g. `precomputed:DIR`), and
may be given a label of the user's choosing: `LABEL=SPEC` (e.g. `Ours=precomputed:DIR`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

from eval.errors import UserError
from eval.manifest import Case
from eval.naming import find_made_elsewhere, slugify
from eval.protocol import Protocol, case_protocol, conform, refusal, what_was_done
from eval.registry import Registry
from eval.video import Video, read_video, video_geometry

ENTRY_POINT_GROUP = "vmc_suite.methods"
# a label names a folder, a key's part and a table's row: letters, digits, '_', '.', '-', '+', not first '-' or '+'
BROUGHT_TO = "the case's frames, fps and size, by eval.protocol's rule"
LABEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


class Method(ABC):
    """Base class: subclasses set `name` and implement adapt / generate. `info()` lands in run.json."""

    name = "method"
    takes_argument = False  # True for methods named `name:ARG`
    # True: adapts and samples with torch models in this process, so on a CPU several single-threaded worker
    # processes (eval.run --jobs) run it faster than one process with all the threads
    compute_bound = False
    # False where generate() only reads a video made elsewhere: its time is not a generation time
    measures_generation = True
    # the options of the command line (eval.cli_common.method_options) that the class takes as keyword arguments
    options: tuple[str, ...] = ()

    def __init__(self, arg: str | None = None, device: str | None = None):
        self.arg = arg
        self.device = device
        self.cache_dir: Path | None = None  # set by the engine before adapt()
        self.given_label: str | None = None  # LABEL of a LABEL=SPEC

    @property
    def label(self) -> str:
        """The name results are filed under (the directory of its videos): the user's, else the default."""
        return self.given_label or self.default_label()

    def default_label(self) -> str:
        return self.name if self.arg is None else f"{self.name}-{slugify(Path(self.arg).name)}"

    def info(self) -> dict:
        return {"name": self.name, "arg": self.arg}

    def search_space(self) -> dict:
        """{setting: eval.search_space.Param} that `eval.tune` may search; empty: nothing to tune."""
        return {}

    def configure(self, settings: dict):
        """Take settings chosen for this method (`eval.run --settings`, `eval.tune`) over its defaults; a method
        without settings refuses any. Subclasses check the names when they use them (info() does)."""
        if settings:
            raise UserError(f"method '{self.name}' has no settings to set (got {', '.join(settings)})")

    @abstractmethod
    def adapt(self, case: Case):
        """Prepare for a case (train, invert, load); the returned state is passed to generate()."""

    @abstractmethod
    def generate(self, state, prompt: str, seed: int) -> Video:
        """One video for a target prompt and seed."""

    def provenance(self, state, prompt: str, seed: int) -> dict:
        """Where one video came from, recorded with its result (external systems: command, version or
        "ingested", original size and fps, resampling). Empty for methods run in-process."""
        return {}

    def protocol(self, state) -> dict:
        """Facts of the adaptation for the fair-protocol report: trained_parameters, train_s (training time,
        also when the adaptation came from a cache), peak_memory_mb (GPU). Empty when not applicable."""
        return {}

    def declared_facts(self, state, prompt: str, seed: int) -> dict:
        """Facts of one video that its makers declare rather than this suite measured (`declared_*`, for the
        fair-protocol report); empty for methods run here."""
        return {}

    def preflight(self, cases: list[Case], references: dict, seeds: list[int], read: bool = False) -> list[str]:
        """What is missing or wrong for these cases (one line each, naming the file), found before a run writes
        anything (`references`: case id → its clip, for those that could be read); `read`: also read every input
        in full (eval.run --check)."""
        return []


class ReferenceMethod(Method):
    """Returns the reference clip itself whatever the prompt: the ceiling of the flow metrics (motion_*), which
    compare with the reference; not of oracle_motion, which tracks the object the target prompt names (absent
    from the reference, so it scores 0)."""

    name = "reference"

    def adapt(self, case: Case):
        return case.load_reference()

    def generate(self, state, prompt: str, seed: int) -> Video:
        return state


class IngestMethod(Method):
    """A method whose videos are made elsewhere and brought to the benchmark's protocol (eval.protocol), or
    refused where `outside_videos` is "refuse" (eval.run --outside-videos)."""

    outside_videos = "resample"

    def info(self) -> dict:
        # videos ingested before this rule kept their own size: a folder holding such videos refuses to mix them
        return {**super().info(), "brought_to": BROUGHT_TO}

    def ingest_folder(self, case: Case) -> Path | None:
        """The folder of a case's ready-made videos, or None where this method makes them as it runs."""
        return None

    def protocol_of(self, case: Case, reference: Video) -> Protocol:
        return case_protocol(case, reference)

    def take(self, video: Video, file, protocol: Protocol) -> Video:
        """A video made elsewhere, under the protocol."""
        return conform(video, file, protocol, self.outside_videos)

    def preflight(self, cases: list[Case], references: dict, seeds: list[int], read: bool = False) -> list[str]:
        return [p for case in cases for p in self._preflight_case(case, references.get(case.id), seeds, read)]

    def _preflight_case(self, case: Case, reference: Video | None, seeds: list[int], read: bool) -> list[str]:
        folder = self.ingest_folder(case)
        if folder is None:
            return []
        if not folder.is_dir():
            return [f"{folder}: no such folder (the videos of case '{case.id}' for method {self.label})"]
        check = reference is not None and (read or self.outside_videos == "refuse")
        protocol = self.protocol_of(case, reference) if check else None
        problems = []
        for prompt in case.target_prompts:
            for seed in seeds:
                try:
                    path = find_made_elsewhere(folder, prompt, seed, case.target_prompts)
                    if check:
                        changed = protocol.differences(*video_geometry(path, decode=read))
                        if changed and self.outside_videos == "refuse":
                            raise refusal(path, changed, protocol)
                except UserError as e:
                    problems.append(str(e))
        return problems


class PrecomputedMethod(IngestMethod):
    """Ingests videos made elsewhere, laid out as DIR/<case>/<prompt-stem>[__s<seed>].mp4 (the names eval.run
    gives its own videos, so a run's videos/<method>/ folder is one), with an optional DIR/facts.yaml of what
    their makers declare (times, trained parameters, hardware; eval.declared)."""

    name = "precomputed"
    takes_argument = True
    measures_generation = False

    def __init__(self, arg: str | None = None, device: str | None = None):
        super().__init__(arg, device)
        if not arg:
            raise UserError("method 'precomputed' needs a folder: precomputed:DIR")
        if not Path(arg).is_dir():
            raise UserError(f"{arg}: no such folder (method precomputed:DIR)")
        from eval.declared import read_declared

        self.facts = read_declared(Path(arg))

    def ingest_folder(self, case: Case) -> Path:
        return Path(self.arg) / case.id

    def adapt(self, case: Case):
        return {"case": case, "protocol": self.protocol_of(case, case.load_reference())}

    def _file(self, state, prompt: str, seed: int) -> Path:
        case = state["case"]
        return find_made_elsewhere(self.ingest_folder(case), prompt, seed, case.target_prompts)

    def generate(self, state, prompt: str, seed: int) -> Video:
        path = self._file(state, prompt, seed)
        return self.take(read_video(path), path, state["protocol"])

    def provenance(self, state, prompt: str, seed: int) -> dict:
        """The file and what was done to it: the same whether the video was made in this process or found in
        the run folder after a kill."""
        path = self._file(state, prompt, seed)
        return {"mode": "ingested", "file": str(path), **what_was_done(*video_geometry(path), state["protocol"])}

    def declared_facts(self, state, prompt: str, seed: int) -> dict:
        return self.facts.for_video(state["case"].id, self._file(state, prompt, seed))

    def preflight(self, cases: list[Case], references: dict, seeds: list[int], read: bool = False) -> list[str]:
        return self.facts.unknown_cases([c.id for c in cases]) + super().preflight(cases, references, seeds, read)


BUILTIN = {"reference": ReferenceMethod, "precomputed": PrecomputedMethod}
REGISTRY = Registry("method", ENTRY_POINT_GROUP, Method, BUILTIN)


def available_methods() -> list[str]:
    """The names of the built-ins and of whatever installed packages registered (nothing is imported)."""
    return REGISTRY.names()


def describe_available() -> str:
    return ", ".join(f"{n}:DIR" if n == "precomputed" else n for n in sorted(available_methods()))


def split_label(spec: str) -> tuple[str | None, str]:
    """(LABEL, SPEC) of `LABEL=SPEC`, or (None, spec); a label that could not name a folder is a UserError."""
    label, eq, rest = spec.partition("=")
    if not eq or ":" in label or "/" in label:  # the '=' is inside a method's argument
        return None, spec
    label, rest = label.strip(), rest.strip()
    if not LABEL_RE.match(label):
        raise UserError(f"method label {label!r} (in {spec!r}): use letters, digits, '_', '.', '-' and '+', starting "
                        "with a letter, digit or '_'")
    if not rest:
        raise UserError(f"method label {label!r} names no method: write {label}=SPEC, e.g. {label}=precomputed:DIR")
    return label, rest


def create_method(spec: str, device: str | None = None, options: dict | None = None) -> Method:
    """The method a spec names (`name`, `name:ARG`, `LABEL=SPEC` giving it the label LABEL), given those of the
    command line's `options` it takes."""
    label, spec = split_label(spec)
    name, _, arg = spec.partition(":")
    if name not in REGISTRY:
        raise UserError(f"unknown method '{name}' (registered: {describe_available()})")
    cls = REGISTRY.get(name)
    if arg and not cls.takes_argument:
        raise UserError(f"method '{name}' takes no argument, got '{spec}'")
    method = cls(arg or None, device=device, **{k: v for k, v in (options or {}).items() if k in cls.options})
    method.given_label = label
    return method
