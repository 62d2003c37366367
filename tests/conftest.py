"""Shared fixtures: a tiny open_clip model saved by the test itself, synthetic videos, a small benchmark."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# Debian's chromium, driven by Playwright in the browser tests (Playwright cannot download its own browser here)
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
TINY_CLIP_CFG = {"embed_dim": 32,
                 "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def moving_square(num_frames=8, height=40, width=64, vx=3.0, vy=1.0, seed=0, size=12, background=(40, 60, 90)):
    """A textured square crossing a plain background at (vx, vy) pixels per frame, centred at mid-clip."""
    rng = np.random.default_rng(seed)
    texture = (rng.random((size, size, 3)) * 200 + 30).astype(np.uint8)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    out[:] = np.array(background, np.uint8)
    x0 = width / 2 - size / 2 - vx * (num_frames - 1) / 2
    y0 = height / 2 - size / 2 - vy * (num_frames - 1) / 2
    for t in range(num_frames):
        x, y = int(round(x0 + vx * t)), int(round(y0 + vy * t))
        y1, y2, x1, x2 = max(y, 0), min(y + size, height), max(x, 0), min(x + size, width)
        if y1 < y2 and x1 < x2:
            out[t, y1:y2, x1:x2] = texture[y1 - y:y2 - y, x1 - x:x2 - x]
    return out


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """(config JSON path, checkpoint path) of a tiny random open_clip model."""
    import open_clip
    import torch

    d = tmp_path_factory.mktemp("clip")
    cfg = d / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip")
    ckpt = d / "tiny-clip.pt"
    torch.save(model.state_dict(), ckpt)
    return cfg, ckpt


@pytest.fixture
def benchmark_dir(tmp_path):
    """A two-case benchmark with its reference clips written as MP4 and as a frame folder."""
    from PIL import Image

    from eval.video import Video, write_video

    write_video(tmp_path / "clips" / "right.mp4", Video(moving_square(vx=3, vy=1), 8))
    frames_dir = tmp_path / "clips" / "down"
    frames_dir.mkdir(parents=True)
    for i, f in enumerate(moving_square(vx=0, vy=3, seed=1)):
        Image.fromarray(f).save(frames_dir / f"{i + 1}.png")
    manifest = {"name": "mini", "root": "clips", "defaults": {"frames": 8},
                "cases": [{"id": "right", "reference": "right.mp4", "train_prompt": "a square is moving right",
                           "target_prompts": ["a red square is moving right", "a star is moving right"]},
                          {"id": "down", "reference": "down", "train_prompt": "a square is falling", "fps": 8,
                           "target_prompts": ["a blue square is falling"]}]}
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return tmp_path


def mini_with_tiny_clip(benchmark_dir, tiny_clip) -> Path:
    """The `benchmark_dir` fixture's mini.yaml with the tiny CLIP as its default metric model."""
    cfg, ckpt = tiny_clip
    path = benchmark_dir / "mini.yaml"
    m = yaml.safe_load(path.read_text())
    m["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    path.write_text(yaml.safe_dump(m))
    return path


def run_cli(*args, cwd=None, check=True, env=None, timeout=600):
    """Run `python ARGS…` in a subprocess; returns CompletedProcess (text)."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd or REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_main(main, *args, capsys=None):
    """Run a CLI's main() in this process; returns (exit code, stdout, stderr)."""
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr() if capsys else None
    return code, (captured.out if captured else ""), (captured.err if captured else "")


def shapes_subset(out: Path, cases: list[str], prompts: int) -> Path:
    """A manifest at `out` holding the shipped `shapes` benchmark's `cases` with their first `prompts` target
    prompts (paths made absolute), so an end-to-end test generates only the videos it needs."""
    manifest = yaml.safe_load((REPO / "benchmarks" / "shapes.yaml").read_text())
    for key in ("clip_model", "clip_pretrained"):
        manifest["metrics"][key] = str((REPO / "benchmarks" / manifest["metrics"][key]).resolve())
    manifest["cases"] = [{**c, "reference": str(REPO / "benchmarks" / c["reference"]),
                          "target_prompts": c["target_prompts"][:prompts]}
                         for c in manifest["cases"] if c["id"] in cases]
    out.write_text(yaml.safe_dump(manifest))
    return out
