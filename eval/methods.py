"""The method registry and the built-in methods.

A method follows one contract: `adapt(case) -> state` (may train; caches under `self.cache_dir`, keyed by
the case's fingerprint and the method's config, so reruns skip it) and `generate(state, prompt, seed) ->
Video`. `vmc` and `baselines` register theirs through the `vmc_suite.methods` entry-point group, so `eval`
never imports them. A method is named `name` or `name:ARG` on the command line (e.g. `precomputed:DIR`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path

from eval.errors import UserError
from eval.manifest import Case
from eval.video import Video, read_video

ENTRY_POINT_GROUP = "vmc_suite.methods"


def slugify(text: str, max_len: int = 80) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "x"


class Method(ABC):
    """Base class: subclasses set `name` and implement adapt / generate. `info()` lands in run.json."""

    name = "method"
    takes_argument = False  # True for methods named `name:ARG`
    # True: adapts and samples with torch models in this process, so on a CPU several single-threaded worker
    # processes (eval.run --jobs) run it faster than one process with all the threads
    compute_bound = False

    def __init__(self, arg: str | None = None, device: str | None = None):
        self.arg = arg
        self.device = device
        self.cache_dir: Path | None = None  # set by the engine before adapt()

    @property
    def label(self) -> str:
        """The name results are filed under (the directory of its videos)."""
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


class ReferenceMethod(Method):
    """Returns the reference clip itself whatever the prompt: the ceiling of the flow metrics (motion_*), which
    compare with the reference; not of oracle_motion, which tracks the object the target prompt names (absent
    from the reference, so it scores 0)."""

    name = "reference"

    def adapt(self, case: Case):
        return case.load_reference()

    def generate(self, state, prompt: str, seed: int) -> Video:
        return state


class PrecomputedMethod(Method):
    """Ingests videos made elsewhere, laid out as DIR/<case>/<prompt-slug>[__s<seed>].mp4."""

    name = "precomputed"
    takes_argument = True

    def __init__(self, arg: str | None = None, device: str | None = None):
        super().__init__(arg, device)
        if not arg:
            raise UserError("method 'precomputed' needs a folder: precomputed:DIR")
        if not Path(arg).is_dir():
            raise UserError(f"{arg}: no such folder (method precomputed:DIR)")

    def adapt(self, case: Case):
        return Path(self.arg) / case.id

    def generate(self, state: Path, prompt: str, seed: int) -> Video:
        return read_video(find_made_elsewhere(state, prompt, seed))


def find_made_elsewhere(folder: Path, prompt: str, seed: int) -> Path:
    """A video made outside the suite for (prompt, seed) in a case's folder: <prompt-slug>__s<seed>.mp4, or
    <prompt-slug>.mp4 when a system has one video per prompt."""
    slug = slugify(prompt)
    for candidate in (folder / f"{slug}__s{seed}.mp4", folder / f"{slug}.mp4"):
        if candidate.exists():
            return candidate
    raise UserError(f"{folder / f'{slug}__s{seed}.mp4'}: no such video (nor {slug}.mp4) for prompt {prompt!r}, "
                    f"seed {seed}")


BUILTIN = {"reference": ReferenceMethod, "precomputed": PrecomputedMethod}


def checkout_entry_points() -> list:
    """The `vmc_suite.methods` entry points of the source checkout this module runs from (its pyproject.toml), as
    EntryPoint objects: a method added to the checkout is found before the package is installed again (installed
    metadata is written at install time). Empty when the module is not in a checkout."""
    import tomllib
    from importlib.metadata import EntryPoint

    path = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    except (OSError, ValueError, KeyError):
        return []
    return [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in table.items()]


def available_methods() -> dict[str, object]:
    """name → entry point or class: the built-ins, whatever installed packages registered, and what the source
    checkout's pyproject.toml registers beyond that."""
    found: dict[str, object] = dict(BUILTIN)
    for ep in [*entry_points(group=ENTRY_POINT_GROUP), *checkout_entry_points()]:
        found.setdefault(ep.name, ep)
    return found


def describe_available() -> str:
    methods = available_methods()
    return ", ".join(f"{n}:DIR" if n == "precomputed" else n for n in sorted(methods))


def create_method(spec: str, device: str | None = None) -> Method:
    name, _, arg = spec.partition(":")
    methods = available_methods()
    if name not in methods:
        raise UserError(f"unknown method '{name}' (registered: {describe_available()})")
    factory = methods[name]
    cls = factory.load() if hasattr(factory, "load") else factory
    if arg and not cls.takes_argument:
        raise UserError(f"method '{name}' takes no argument, got '{spec}'")
    return cls(arg or None, device=device)
