"""External systems — `videocomposer`, `control-a-video`, `gen1` (and the generic `external`) — driven as
separate processes in their own environments, or ingested from outputs made elsewhere.

Named `SYSTEM:CONFIG.yaml` on the command line. The YAML holds exactly one of
  command: the command run once per item, a list of arguments or one string split like a shell would (no
           shell runs it); the placeholders {reference} (the case's reference clip as the other methods see
           it, written as MP4), {prompt}, {seed} and {out} (the MP4 the system must write) are substituted
           inside arguments, so a prompt can never become a second argument or a shell command;
  ingest:  a folder of outputs laid out as <case>/<prompt-stem>__s<seed>.mp4 (or <prompt-stem>.mp4; eval.naming);
and optionally `version` (recorded with every result), `cwd`, `env`, `timeout_s` (default 3600) and
`protocol` (`frames`, `fps`, `size: [H, W]`; default: the case's, see eval.protocol).

Outputs are brought to the benchmark's protocol by the one rule of every video made elsewhere (eval.protocol:
the case's frames, fps and size, which `protocol` may override), or refused where eval.run is given
`--outside-videos refuse`. Every result carries its provenance: command and version, or "ingested" and the file,
plus the output's original frames, fps and size and what was changed.

Control-A-Video is GPL-3.0: it is only ever run as a separate process, never imported.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import yaml

from eval.errors import UserError, VideoError
from eval.manifest import Case
from eval.methods import IngestMethod
from eval.naming import find_made_elsewhere, prompt_stem
from eval.protocol import RULE, Protocol, case_protocol, what_was_done
from eval.results import atomic_write_text
from eval.video import Video, read_video, write_video

FIELDS = {"command", "ingest", "version", "cwd", "env", "timeout_s", "protocol"}
PLACEHOLDERS = ("reference", "prompt", "seed", "out")


def load_config(path: Path) -> dict:
    def fail(msg):
        raise UserError(f"{path}: {msg}")

    if not path.is_file():
        fail("no such config file")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        fail(f"not valid YAML ({str(e).splitlines()[0]})")
    if not isinstance(cfg, dict):
        fail("must be a mapping")
    unknown = set(cfg) - FIELDS
    if unknown:
        fail(f"unknown field(s) {', '.join(sorted(unknown))} (fields: {', '.join(sorted(FIELDS))})")
    if ("command" in cfg) == ("ingest" in cfg):
        fail("give exactly one of `command` (run the system per item) or `ingest` (a folder of its outputs)")
    if "command" in cfg:
        cmd = cfg["command"]
        argv = shlex.split(cmd) if isinstance(cmd, str) else cmd
        if not isinstance(argv, list) or not argv or not all(isinstance(a, (str, int, float)) for a in argv):
            fail("`command` must be a non-empty string or list of strings")
        argv = [str(a) for a in argv]
        if not any("{out}" in a for a in argv):
            fail("`command` must contain {out}, the MP4 the system writes")
        try:
            [a.format(**{k: "" for k in PLACEHOLDERS}) for a in argv]
        except (KeyError, IndexError, ValueError) as e:
            fail(f"`command` has an unknown or malformed placeholder ({e}); placeholders: "
                 f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)} (write {{{{ and }}}} for literal braces)")
        cfg["command"] = argv
    else:
        folder = Path(os.path.expanduser(str(cfg["ingest"])))
        if not folder.is_absolute():
            folder = path.parent / folder
        if not folder.is_dir():
            fail(f"`ingest`: no such folder {folder}")
        cfg["ingest"] = folder
    timeout = cfg.get("timeout_s", 3600)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        fail("`timeout_s` must be a positive number of seconds")
    cfg["timeout_s"] = float(timeout)
    proto = cfg.get("protocol") or {}
    if not isinstance(proto, dict) or set(proto) - {"frames", "fps", "size"}:
        fail("`protocol` takes frames, fps and size: [H, W]")
    for key, kind in (("frames", int), ("fps", (int, float))):
        if key in proto and (isinstance(proto[key], bool) or not isinstance(proto[key], kind) or proto[key] <= 0):
            fail(f"`protocol.{key}` must be a positive {'integer' if kind is int else 'number'}")
    if "size" in proto and not (isinstance(proto["size"], list) and len(proto["size"]) == 2
                                and all(isinstance(v, int) and v > 0 for v in proto["size"])):
        fail("`protocol.size` must be [height, width] in pixels")
    cfg["protocol"] = proto
    if not isinstance(cfg.get("env", {}), dict):
        fail("`env` must be a mapping of variable names to values")
    return cfg


class ExternalMethod(IngestMethod):
    name = "external"
    takes_argument = True

    def __init__(self, arg: str | None = None, device: str | None = None):
        super().__init__(arg, device)
        if not arg:
            raise UserError(f"method '{self.name}' needs a config: {self.name}:CONFIG.yaml (see baselines/external.py)")
        self.config_path = Path(arg)
        self.config = load_config(self.config_path)
        self.measures_generation = "command" in self.config  # reading an ingested file is no generation

    def default_label(self) -> str:
        return self.name

    def ingest_folder(self, case: Case) -> Path | None:
        return self.config["ingest"] / case.id if "ingest" in self.config else None

    def protocol_of(self, case: Case, reference: Video) -> Protocol:
        proto = self.config["protocol"]
        return case_protocol(case, reference, proto.get("frames"), proto.get("fps"), proto.get("size"))

    def info(self) -> dict:
        c = self.config
        return {**super().info(), "system": self.name, "version": c.get("version"),
                "mode": "command" if "command" in c else "ingested",
                "command": c.get("command"), "ingest": str(c["ingest"]) if "ingest" in c else None,
                "protocol": c["protocol"], "resampling_rule": RULE, "trained_parameters": None}

    def adapt(self, case: Case):
        folder = (self.cache_dir or Path("runs/external-cache")) / case.id
        folder.mkdir(parents=True, exist_ok=True)
        reference = case.load_reference()
        ref_file = folder / "reference.mp4"
        if "command" in self.config and not ref_file.exists():
            write_video(ref_file, reference)
        return {"case": case, "folder": folder, "reference": ref_file, "protocol": self.protocol_of(case, reference)}

    def _paths(self, state, prompt: str, seed: int) -> tuple[Path, Path, Path]:
        stem = state["folder"] / f"{prompt_stem(prompt)}__s{seed}"
        return stem.with_suffix(".mp4"), stem.with_suffix(".log"), stem.with_suffix(".json")

    def _run(self, state, prompt: str, seed: int) -> dict:
        """Run the command for one item, or reuse its finished output from an earlier (killed) run."""
        out, log, _ = self._paths(state, prompt, seed)
        finished = out.with_suffix(".run.json")
        if finished.is_file() and out.is_file():
            return json.loads(finished.read_text())
        values = {"reference": str(state["reference"].resolve()), "prompt": prompt, "seed": str(seed),
                  "out": str(out.resolve())}
        argv = [a.format(**values) for a in self.config["command"]]
        cwd = os.path.expanduser(str(self.config["cwd"])) if self.config.get("cwd") else None
        env = {**os.environ, **{str(k): str(v) for k, v in (self.config.get("env") or {}).items()}}
        out.unlink(missing_ok=True)
        finished.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with open(log, "w") as f:
            f.write(f"$ {shlex.join(argv)}\n")
            f.flush()
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            except OSError as e:
                raise UserError(f"{self.name}: cannot start {argv[0]!r} ({e.strerror}); check `command` in "
                                f"{self.config_path}") from None
            try:
                code = proc.wait(timeout=self.config["timeout_s"])
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise UserError(f"{self.name}: timed out after {self.config['timeout_s']:g} s on case "
                                f"{state['case'].id}, prompt {prompt!r}, seed {seed} (log: {log})") from None
        seconds = round(time.perf_counter() - t0, 3)
        if code != 0:
            tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
            raise UserError(f"{self.name}: exited with status {code} on case {state['case'].id}, prompt {prompt!r}, "
                            f"seed {seed}{': ' + tail[0] if tail else ''} (log: {log})")
        if not out.is_file():
            raise UserError(f"{self.name}: finished but wrote no video at {out} (log: {log})")
        source = {"system": self.name, "mode": "command", "command": argv, "version": self.config.get("version"),
                  "cwd": cwd, "seconds": seconds, "log": str(log), "file": str(out)}
        atomic_write_text(finished, json.dumps(source, indent=1) + "\n")  # the marker of a finished output, last
        return source

    def generate(self, state, prompt: str, seed: int) -> Video:
        _, _, sidecar = self._paths(state, prompt, seed)
        if "command" in self.config:
            source = self._run(state, prompt, seed)
        else:
            case = state["case"]
            path = find_made_elsewhere(self.ingest_folder(case), prompt, seed, case.target_prompts)
            source = {"system": self.name, "mode": "ingested", "file": str(path), "version": self.config.get("version")}
        try:
            raw = read_video(source["file"], min_frames=1)
        except VideoError as e:
            hint = f" (log: {source['log']})" if "log" in source else ""
            raise UserError(f"{self.name}: unusable output: {e}{hint}") from None
        video = self.take(raw, source["file"], state["protocol"])
        provenance = {**source, **what_was_done(raw.num_frames, raw.fps, raw.size, state["protocol"])}
        atomic_write_text(sidecar, json.dumps(provenance, indent=1) + "\n")
        return video

    def provenance(self, state, prompt: str, seed: int) -> dict:
        sidecar = self._paths(state, prompt, seed)[2]
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


class VideoComposerMethod(ExternalMethod):
    """VideoComposer (ali-vilab, MIT): conditions on the reference's motion vectors; needs torch 1.12 / Py 3.8."""
    name = "videocomposer"


class ControlAVideoMethod(ExternalMethod):
    """Control-A-Video (GPL-3.0): run as a separate process only."""
    name = "control-a-video"


class Gen1Method(ExternalMethod):
    """Runway Gen-1: a hosted service; ingest its outputs (or script its API in your own command)."""
    name = "gen1"
