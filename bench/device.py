"""Every GPU figure of the project in one run within a time budget, written to one JSON file:

    python -m bench.device --out FILE.json [--budget-s 480] [--only NAME,…] [--estimates EARLIER.json] [--smoke]
    python -m bench.device --list [--smoke]        # the sections in order, their estimates, what this build lacks
    python -m bench.device --table FILE.json       # the Markdown table of a finished run

The sections (SECTIONS, one entry per measured configuration) run in order of importance: the three open
figures (keyframe-UNet evaluation, VMC step, whole cascade) with and without the short temporal attention, the
16-bit frozen weights and gradient checkpointing; then the guidance methods against t2v at Show-1's size; then
every method at ZeroScope's, Wan 2.1 1.3B's and CogVideoX-2B's sizes. Every model has random weights at its
published size, built on the device from configs (nothing is downloaded): the figures are timings only. A
backbone whose kind this build lacks has its sections skipped, saying so.

The budget counts from the start of the process. Before each section, its estimated cost (on one H100, model
building and warm-ups included; --estimates takes an earlier run's wall times instead) is set against the time
left: a section that would not fit is skipped and named, and one still running when the budget ends is
stopped there. A section that fails records its error and the run goes on. The JSON is rewritten atomically
after every section: per figure its name, value, unit, target (an upper bound, null where none is set),
settings, device, torch and diffusers versions and its section's wall time; per section its status.

--smoke runs the same sections on the CPU at tiny sizes: every code path runs, nothing is measured.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # before the heavy imports: the budget counts the start-up too

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import torch  # noqa: E402

from bench.methods import (METHODS, RANDOM_MODELS, cpu_threads, measure, random_model,  # noqa: E402
                           random_model_problem)
from eval.errors import UserError, cli_main, read_json  # noqa: E402
from eval.results import atomic_write_text  # noqa: E402

RESERVE_S = 5.0  # kept back from the budget for writing the JSON and the table
SMOKE_SIZE = (4, 8, 8)  # keyframes × height × width at --smoke (the UNet downsamples by 8)
GIB_40GB = 40e9 / 2**30  # issue 45's "under 40 GB", in GiB


@dataclass(frozen=True)
class Section:
    """One measured configuration: `measure(context, **settings)` returns {figure: value or None}; `figures`
    declares each figure's (unit, target); `estimate_s` is its cost on one H100 and `smoke_s` at --smoke;
    `model`, the random model it runs on (bench/methods.py RANDOM_MODELS), written once for all its sections."""

    name: str
    measure: Callable
    settings: dict
    figures: dict
    estimate_s: float
    smoke_s: float
    model: str | None = None


@dataclass
class Context:
    device: torch.device
    smoke: bool
    scratch: Path
    models: dict = field(default_factory=dict)  # random model → its folder
    written: dict = field(default_factory=dict)  # random model → seconds its writing took, until recorded
    t2v_s: dict = field(default_factory=dict)  # random model → t2v's generation time measured in this run

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.smoke else torch.float16

    @property
    def size(self) -> tuple:
        from bench.unet_keyframes import SIZE

        return SMOKE_SIZE if self.smoke else SIZE

    def model(self, name: str) -> Path:
        if name not in self.models:
            t0 = time.monotonic()
            root = random_model(name, self.scratch / name, "tiny" if self.smoke else "official")
            if self.smoke:
                few_steps(root)
            self.models[name], self.written[name] = root, time.monotonic() - t0
        return self.models[name]


def few_steps(root: Path):
    """A tiny model's cascade.json set to sample and adapt in a few steps, so that --smoke takes seconds."""
    path = root / "cascade.json"
    meta = read_json(path)
    meta.setdefault("settings", {})["keyframe_steps"] = 2
    for name in ("vmc", "vmc-eps", "tav", "md", "motion-inversion"):
        meta[name] = {"steps": 2, "inversion_steps": 2}
    meta["dmt"] = {"iterations": 2}
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")


# ---- what each kind of section measures (the bench scripts' own functions, at published or tiny sizes) ----

def unet_evaluation(ctx: Context, attention: str) -> dict:
    from bench.cascade import unet_configs
    from bench.unet_keyframes import build, evaluation, inputs

    config = unet_configs(ctx.smoke)["keyframes"]
    model = build(config, ctx.device, ctx.dtype)
    seconds, _ = evaluation(model, attention, ctx.dtype, inputs(config, ctx.device, ctx.size), 2 if ctx.smoke else 20)
    return {"evaluation": seconds * 1e3}


def vmc_step(ctx: Context, attention: str, checkpointing: str, frozen_weights: str, precision: str) -> dict:
    from bench.cascade import unet_configs
    from bench.vmc_adaptation import step_time

    r = step_time(unet_configs(ctx.smoke)["keyframes"], ctx.device, 1 if ctx.smoke else 10, precision, attention,
                  checkpointing, frozen_weights == "16bit", ctx.size, warm_up=1 if ctx.smoke else 2)
    return {"step": r["step_s"] * 1e3, "peak": r["peak_gib"]}


def cascade(ctx: Context, attention: str) -> dict:
    from bench.cascade import run
    from vmc.backbones.show1 import CascadeSettings

    settings = CascadeSettings()
    if ctx.smoke:  # 2 keyframes → 3 frames, one step per stage
        settings = CascadeSettings(num_frames=2, interp_new_per_pair=1, height=8, width=8, sr1_window=3,
                                   sr1_stride=2, sr2_height=32, sr2_width=32, keyframe_steps=1, interp_steps=1,
                                   sr1_steps=1, sr2_steps=2)
    stages = run(ctx.smoke, settings, ctx.device, ctx.dtype, attention)
    peaks = [r["peak_gib"] for r in stages.values() if r["peak_gib"] is not None]
    return {"per prompt": sum(r["s"] for r in stages.values()), **{name: r["s"] for name, r in stages.items()},
            "peak": max(peaks) if peaks else None}


def guidance(ctx: Context, method: str) -> dict:
    from bench.guidance import show1_random

    times = show1_random(("t2v", method), 1, ctx.device, ctx.dtype, ctx.smoke, 3 if ctx.smoke else 75, ctx.size,
                         1 if ctx.smoke else 10)
    t2v, guided = (statistics.median(times[m]["keyframes"]) for m in ("t2v", method))
    return {"t2v": t2v, method: guided, "× t2v": guided / t2v}


def method_per_video(ctx: Context, model: str, method: str) -> dict:
    from eval.manifest import load_benchmark

    case = load_benchmark("shapes-dev").case("rise")
    r = measure(method, str(ctx.model(model)), case, str(ctx.device), 1 if ctx.smoke else 10, ctx.scratch / "cache",
                warm_up=not ctx.smoke)
    if "refused" in r:  # the method has no port to this backbone's kind: recorded as skipped, with its line
        raise UserError(r["refused"])
    if method == "t2v":
        ctx.t2v_s[model] = r["generate_s"]
    base = ctx.t2v_s.get(model) if method != "t2v" else None
    return {"adapt": r["adapt_s"], "generate": r["generate_s"], "× t2v": r["generate_s"] / base if base else None,
            "adapt peak": r["adapt_gb"], "generate peak": r["generate_gb"]}


# ---- the sections, in order of importance ----
# Estimates on one H100: from the figures in the README (UNet 99 ms per evaluation, VMC step 0.27–0.55 s, cascade
# 178 s), each with a few seconds to build its models; ZeroScope's and the DiTs' are guesses until measured.

def _sections() -> list[Section]:
    ms = {"evaluation": ("ms", 55)}
    step = {"step": ("ms", 95), "peak": ("GiB", 8)}
    per_prompt = {"per prompt": ("s", 60), **{s: ("s", None) for s in ("keyframes", "interp", "sr1", "sr2")},
                  "peak": ("GiB", None)}
    out = [Section(f"unet/{a}", unet_evaluation, {"attention": a}, ms, 15, 3) for a in ("sdpa", "short")]
    for suffix, a, c, w, p, est in [("sdpa", "sdpa", "none", "16bit", "fp16", 20),
                                    ("sdpa-fp32-weights", "sdpa", "none", "fp32", "fp16", 20),
                                    ("short", "short", "none", "16bit", "fp16", 20),
                                    ("sdpa-convs", "sdpa", "convs", "16bit", "fp16", 22),
                                    ("short-convs", "short", "convs", "16bit", "fp16", 22),
                                    ("sdpa-full", "sdpa", "full", "16bit", "fp16", 25),
                                    ("short-full", "short", "full", "16bit", "fp16", 25),
                                    ("sdpa-bf16", "sdpa", "none", "16bit", "bf16", 20)]:
        out.append(Section(f"vmc/{suffix}", vmc_step, {"attention": a, "checkpointing": c, "frozen_weights": w,
                                                        "precision": p}, step, est, 3))
    out += [Section(f"cascade/{a}", cascade, {"attention": a}, per_prompt, 200, 6) for a in ("sdpa", "short")]
    out += [Section(f"guidance/{m}", guidance, {"method": m},
                    {"t2v": ("s", None), m: ("s", None), "× t2v": ("×", None)}, est, 6)
            for m, est in (("motionclone", 60), ("dmt", 200))]
    per_video = {"adapt": ("s", None), "generate": ("s", None), "× t2v": ("×", None), "adapt peak": ("GiB", None),
                 "generate peak": ("GiB", None)}
    wan_targets = {"vmc": {"adapt": ("s", 600), "adapt peak": ("GiB", GIB_40GB)},  # issue 45's aims
                   "motionclone": {"× t2v": ("×", 3)}, "dmt": {"× t2v": ("×", 3)}}
    for prefix, model, estimates, targets in [
            ("zeroscope", "zeroscope-random", dict(t2v=40, inversion=45, motionclone=70, dmt=240), {}),
            ("wan2.1-1.3b", "wan2.1-random", dict(t2v=200, dmt=1300), wan_targets),
            ("cogvideox-2b", "cogvideox-random", dict(t2v=200, dmt=1300), {})]:
        default = 60 if prefix == "zeroscope" else 300
        for m in METHODS.split(","):
            out.append(Section(f"{prefix}/{m}", method_per_video, {"model": model, "method": m},
                               {**per_video, **targets.get(m, {})}, estimates.get(m, default), 4, model))
    return out


SECTIONS = _sections()
# seconds to write each random model: on the device (published sizes, initialised on its CPU) and at --smoke
MODEL_SETUP_S = {"zeroscope-random": (45, 5), "wan2.1-random": (120, 10), "cogvideox-random": (120, 10)}
assert set(MODEL_SETUP_S) == set(RANDOM_MODELS)


# ---- running within the budget ----

class OutOfTime(BaseException):
    """The budget ended while a section ran (a BaseException, so that no `except Exception` inside swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise OutOfTime in the main thread when `seconds` have passed."""
    def stop(*_):
        raise OutOfTime

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_sections(sections, budget_s: float, started: float, measure_one, estimate, problem,
                 clock=time.monotonic, say=print, reserve_s: float = RESERVE_S, after=lambda records: None) -> list:
    """Each section in order: skipped when `problem(section)` names one or `estimate(section)` exceeds the time
    left, else `measure_one(section)` ({figure: value}), stopped where the budget ends (and skipped after all
    when it refuses in one line, a UserError). Returns a record per section (name, settings, status measured /
    skipped / failed / stopped, reason, estimate, wall time, values); `after` gets the records after each."""
    records = []
    for section in sections:
        record = {"name": section.name, "settings": section.settings}
        left = budget_s - (clock() - started) - reserve_s
        reason = problem(section)
        if not reason:
            record["estimate_s"] = round(estimate(section), 1)
            if record["estimate_s"] > left:
                reason = f"would not fit: estimated {record['estimate_s']:.0f} s, {max(left, 0):.0f} s left"
        if reason:
            record.update(status="skipped", reason=reason)
            say(f"skip {section.name}: {reason}")
        else:
            say(f"run  {section.name} (estimated {record['estimate_s']:.0f} s, {left:.0f} s left)")
            t0 = clock()
            try:
                with deadline(left):
                    record.update(status="measured", values=measure_one(section))
            except OutOfTime:
                record.update(status="stopped", reason=f"stopped where the budget ends, after {clock() - t0:.0f} s")
            except UserError as e:  # a refusal, e.g. a method that does not apply to a backbone kind
                record.update(status="skipped", reason=str(e))
            except Exception as e:  # noqa: BLE001 - recorded, and the run goes on
                record.update(status="failed", reason=f"{type(e).__name__}: {e}".splitlines()[0])
            record["wall_s"] = round(clock() - t0, 1)
            if record["status"] != "measured":
                say(f"     {section.name}: {record['reason']}")
        records.append(record)
        after(records)
    return records


def figures(section: Section, record: dict, facts: dict) -> list[dict]:
    """The figures of one measured section, those with a value, each with its unit, target and facts."""
    out = []
    for key, value in record.get("values", {}).items():
        unit, target = section.figures[key]
        if value is None:
            continue
        out.append({"name": f"{section.name}: {key}", "section": section.name, "value": round(float(value), 4),
                    "unit": unit, "target": target, "met": None if target is None else value <= target,
                    "settings": section.settings, **facts, "wall_s": record["wall_s"]})
    return out


def device_facts(device: torch.device) -> dict:
    import diffusers

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.machine()}, {torch.get_num_threads()} thread(s))"
    return {"device": name, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "cuda": torch.version.cuda if device.type == "cuda" else None}


def markdown(result: dict) -> str:
    """The figures as a Markdown table, then what was not measured and why."""
    def number(v):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"

    lines = ["| figure | value | target | card | wall s |", "|---|---|---|---|---|"]
    for f in result["figures"]:
        target = "—" if f["target"] is None else f"≤ {number(f['target'])} {f['unit']}"
        lines.append(f"| `{f['name']}` | {number(f['value'])} {f['unit']} | {target} | {f['device']} | "
                     f"{f['wall_s']:.0f} |")
    by_reason = {}
    for s in result["sections"]:
        if s["status"] != "measured":
            by_reason.setdefault(f"{s['status']}: {s['reason']}", []).append(s["name"])
    lines += [""] + [f"- {reason}: {', '.join(names)}" for reason, names in by_reason.items()]
    lines.append(f"\n{result['facts']['device']}, torch {result['facts']['torch']}, diffusers "
                 f"{result['facts']['diffusers']}; {result['wall_s']:.0f} s of a {result['budget_s']:.0f} s budget"
                 + (" (--smoke: tiny sizes on the CPU, not a measurement)" if result["smoke"] else ""))
    return "\n".join(lines)


def select(only: str | None) -> list[Section]:
    """The sections `only` names (each a section's name or its prefix before the slash), in SECTIONS' order."""
    if not only:
        return SECTIONS
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if not any(s.name == w or s.name.split("/")[0] == w for s in SECTIONS)]
    if unknown:
        groups = dict.fromkeys(s.name.split("/")[0] for s in SECTIONS)
        raise UserError(f"--only {','.join(unknown)}: no such section; sections are GROUP/NAME in the groups "
                        f"{', '.join(groups)} (python -m bench.device --list names them all)")
    return [s for s in SECTIONS if s.name in wanted or s.name.split("/")[0] in wanted]


def earlier_estimates(path: Path) -> dict:
    """Each section's wall time in an earlier run's JSON, less the writing of random models."""
    return {s["name"]: s["wall_s"] - sum(s.get("model_written_s", {}).values())
            for s in read_json(path).get("sections", []) if s.get("status") == "measured"}


def problem(section: Section) -> str | None:
    """Why `section` cannot run in this build (None when it can)."""
    return random_model_problem(section.model) if section.model else None


def estimate(section: Section, smoke: bool, known: dict, models_written: set) -> float:
    """Seconds `section` should take: its own estimate or an earlier run's time, plus writing its random model
    when no earlier section of this run has."""
    own = known.get(section.name, section.smoke_s if smoke else section.estimate_s)
    if section.model and section.model not in models_written:
        gpu, cpu = MODEL_SETUP_S[section.model]
        own += cpu if smoke else gpu
    return own


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.device", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="the JSON file to write")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds for the whole run, start-up included")
    p.add_argument("--only", help="sections to run: names or groups (unet, vmc, cascade, …), comma-separated")
    p.add_argument("--estimates", type=Path, help="an earlier run's JSON: its wall times become the estimates")
    p.add_argument("--smoke", action="store_true", help="the same sections on the CPU at tiny sizes (no figures)")
    p.add_argument("--list", action="store_true", help="print the sections and their estimates, run nothing")
    p.add_argument("--table", type=Path, metavar="FILE.json", help="print the Markdown table of a finished run")
    args = p.parse_args(argv)
    if args.table:
        print(markdown(read_json(args.table)))
        return
    sections = select(args.only)
    known = earlier_estimates(args.estimates) if args.estimates else {}
    if args.list:
        written = set()  # a random model is written once, by the first section that needs it
        for s in sections:
            note = f"(with writing {s.model})" if s.model and s.model not in written else ""
            print(f"{s.name:32s} {estimate(s, args.smoke, known, written):6.0f} s  {problem(s) or note}")
            written.add(s.model)
        return
    if not args.out:
        raise UserError("--out FILE.json is required (where the figures are written)")
    if args.budget_s <= RESERVE_S:
        raise UserError(f"--budget-s {args.budget_s:g}: give more than the {RESERVE_S:g} s kept for writing")
    if not args.smoke and not torch.cuda.is_available():
        raise UserError("no CUDA device here: the device run needs a GPU (--smoke runs it on the CPU at tiny sizes)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu" if args.smoke else "cuda")
    cpu_threads(device)
    facts = device_facts(device)
    result = {"command": ["python", "-m", "bench.device", *(argv if argv is not None else sys.argv[1:])],
              "smoke": args.smoke, "budget_s": args.budget_s, "facts": facts,
              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "wall_s": 0.0, "figures": [], "sections": []}
    by_name = {s.name: s for s in sections}
    print(f"{facts['device']}, torch {facts['torch']}, diffusers {facts['diffusers']}; {len(sections)} sections, "
          f"budget {args.budget_s:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-device-") as scratch:
        ctx = Context(device, args.smoke, Path(scratch))

        def measure_one(section):
            try:
                return section.measure(ctx, **section.settings)
            finally:
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()

        def write(records):
            if ctx.written:  # the random models this section wrote first
                records[-1]["model_written_s"] = {k: round(v, 1) for k, v in ctx.written.items()}
                ctx.written.clear()
            result["sections"] = records
            result["figures"] = [f for r in records if r["status"] == "measured"
                                 for f in figures(by_name[r["name"]], r, facts)]
            result["wall_s"] = round(time.monotonic() - STARTED, 1)
            atomic_write_text(args.out, json.dumps(result, indent=1, ensure_ascii=False) + "\n")

        run_sections(sections, args.budget_s, STARTED, measure_one,
                     lambda s: estimate(s, args.smoke, known, set(ctx.models)), problem,
                     say=lambda line: print(line, flush=True), after=write)
    print()
    print(markdown(result))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
