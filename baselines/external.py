"""External systems — `videocomposer`, `control-a-video`, `gen1` (and the generic `external`) — driven as
separate processes in their own environments, or ingested from outputs made elsewhere.

Named `SYSTEM:CONFIG.yaml` on the command line. The YAML holds exactly one of
  command: the command run once per item, a list of arguments or one string split like a shell would (no
           shell runs it); the placeholders {reference} (the case's reference clip as the other methods see
           it, written as MP4), {prompt}, {seed} and {out} (the MP4 the system must write) are substituted
           inside arguments, so a prompt can never become a second argument or a shell command;
  ingest:  a folder of outputs laid out as <case>/<prompt-slug>__s<seed>.mp4 (or <prompt-slug>.mp4);
and optionally `version` (recorded with every result), `cwd`, `env`, `timeout_s` (default 3600) and
`protocol` (`frames`, `fps`, `size: [H, W]`; default: the reference clip's frame count and fps, the output's
own size).

Resampling rule, applied when an output differs from the protocol and recorded with the result: in time, the
protocol's frame count is taken at uniformly spaced positions over the whole output (first and last frames
kept, nearest frame, so frames repeat when upsampling) and played at the protocol fps; in space, the frames are
scaled to cover the protocol size with their aspect ratio kept (area filter when shrinking, bilinear when
enlarging), then centre-cropped. Every result carries its provenance: command and version, or "ingested" and
the file, plus the output's original frames, fps and size.

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

import numpy as np
import yaml

from eval.errors import UserError, VideoError
from eval.manifest import Case
from eval.methods import Method, find_made_elsewhere, slugify
from eval.results import atomic_write_text
from eval.video import Video, read_video, sample_indices, write_video

FIELDS = {"command", "ingest", "version", "cwd", "env", "timeout_s", "protocol"}
PLACEHOLDERS = ("reference", "prompt", "seed", "out")
RULE = ("time: uniform nearest-frame positions over the whole output, first and last kept, at the protocol fps; "
        "space: scale to cover keeping the aspect ratio (area down, bilinear up), centre crop")


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


def resize_cover(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale T×h×w×3 frames to cover height×width keeping the aspect ratio, then centre-crop."""
    import cv2

    t, h, w, _ = frames.shape
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(out[:, top:top + height, left:left + width])


def to_protocol(video: Video, frames: int, fps: float, size: tuple[int, int] | None) -> tuple[Video, dict | None]:
    """Apply the resampling rule; returns the video and what was changed (None when nothing)."""
    changed = {}
    out = video.frames
    if video.num_frames != frames:
        out = out[sample_indices(video.num_frames, frames)]
        changed["frames"] = [video.num_frames, frames]
    if abs(video.fps - fps) > 1e-6:
        changed["fps"] = [video.fps, fps]
    if size is not None and tuple(out.shape[1:3]) != tuple(size):
        changed["size"] = [list(out.shape[1:3]), list(size)]
        out = resize_cover(out, *size)
    return Video(out, fps), (changed or None)


class ExternalMethod(Method):
    name = "external"
    takes_argument = True

    def __init__(self, arg: str | None = None, device: str | None = None):
        super().__init__(arg, device)
        if not arg:
            raise UserError(f"method '{self.name}' needs a config: {self.name}:CONFIG.yaml (see baselines/external.py)")
        self.config_path = Path(arg)
        self.config = load_config(self.config_path)

    @property
    def label(self) -> str:
        return self.name

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
        proto = self.config["protocol"]
        target = {"frames": int(proto.get("frames", reference.num_frames)), "fps": float(proto.get("fps", reference.fps)),
                  "size": tuple(proto["size"]) if "size" in proto else None}
        return {"case": case, "folder": folder, "reference": ref_file, "target": target}

    def _paths(self, state, prompt: str, seed: int) -> tuple[Path, Path, Path]:
        stem = state["folder"] / f"{slugify(prompt)}__s{seed}"
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
            path = find_made_elsewhere(self.config["ingest"] / state["case"].id, prompt, seed)
            source = {"system": self.name, "mode": "ingested", "file": str(path), "version": self.config.get("version")}
        try:
            raw = read_video(source["file"], min_frames=1)
        except VideoError as e:
            hint = f" (log: {source['log']})" if "log" in source else ""
            raise UserError(f"{self.name}: unusable output: {e}{hint}") from None
        target = state["target"]
        video, changed = to_protocol(raw, target["frames"], target["fps"], target["size"])
        provenance = {**source, "original": {"frames": raw.num_frames, "fps": raw.fps, "size": list(raw.size)},
                      "resampled": changed, "rule": RULE if changed else None}
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
