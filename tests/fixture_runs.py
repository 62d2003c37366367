"""Synthetic run directories, laid out exactly as eval.run writes them, for the human-study and dashboard tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from eval.naming import video_name
from tests.conftest import moving_square

METRIC_SPECS = {"text_alignment": "spec-clip", "clip_score": "spec-clip", "temporal_consistency": "spec-clip",
                "motion_direction_cos": "spec-flow", "motion_trajectory_cos": "spec-flow",
                "oracle_motion": "spec-oracle"}


def make_run(root: Path, methods=("vmc", "tav", "t2v"), cases=None, seeds=(0,), frames=4, size=16,
             quality=None, details=True) -> Path:
    """A run directory with tiny real MP4s: `cases` maps case id -> target prompts; `quality[method]` shifts the
    metric values so methods differ."""
    from eval.record import Record, Timing
    from eval.results import summarize, write_summary
    from eval.rundir import RunFolder
    from eval.video import Video, write_video

    cases = cases or {"right": ["a red circle is moving right", "a blue star is moving right"],
                      "fall": ["a green square is falling", "a white circle is falling"]}
    quality = quality or {m: 1.0 - 0.3 * i for i, m in enumerate(methods)}
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "fixture", "cases": []}
    for k, (case, prompts) in enumerate(cases.items()):
        write_video(root / "refs" / f"{case}.mp4", Video(moving_square(frames, size, size, vx=1 + k, seed=k), 8))
        manifest["cases"].append({"id": case, "reference": f"refs/{case}.mp4", "train_prompt": f"a shape {case}",
                                  "target_prompts": list(prompts)})
    (root / "fixture.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    rng = np.random.default_rng(0)
    run = RunFolder(root / "run")
    for m_i, method in enumerate(methods):
        for k, (case, prompts) in enumerate(cases.items()):
            for p_i, prompt in enumerate(prompts):
                for seed in seeds:
                    rel = f"videos/{method}/{case}/{video_name(prompt, seed)}"
                    clip = moving_square(frames, size, size, vx=1 + k, vy=m_i, seed=100 * m_i + 10 * p_i + seed)
                    write_video(root / "run" / rel, Video(clip, 8))
                    q = quality[method]
                    metrics = {name: float(np.clip(q * 0.8 + rng.normal(0, 0.05), -1, 1)) for name in METRIC_SPECS}
                    series = {}
                    if details:
                        sim = np.clip(rng.normal(0.8, 0.1, (frames, frames)), -1, 1)
                        np.fill_diagonal(sim, 1.0)
                        traj = rng.normal(0, 1, (frames - 1, 2)).round(4)
                        series = {
                            "frame_indices": list(range(frames)), "frame_similarity": sim.round(4).tolist(),
                            "text_cos_per_frame": rng.uniform(0.1, 0.4, frames).round(4).tolist(),
                            "trajectory": traj.tolist(), "trajectory_reference": (traj + 0.1).tolist()}
                    run.append([Record(f"{method}|{case}|{prompt}|{seed}", method, prompt, rel, metrics=metrics,
                                       spec_ids=dict(METRIC_SPECS), details=series, case=case, seed=seed,
                                       num_frames=frames, fps=8.0, size=[size, size], timing=Timing(0.5, 0.1, 1.0),
                                       protocol={"trained_parameters": 1000 * (m_i + 1), "train_s": 2.0})])
    write_summary(summarize(run.records(), list(methods)), run.path / "summary.csv")
    run.write_config({"benchmark": {"name": "fixture", "manifest": run.stored_path(root / "fixture.yaml"),
                                    "cases": list(cases)},
                      "command": ["eval.run", "--methods", ",".join(methods)], "created": "2026-11-22T00:00:00+00:00",
                      "device": "cpu", "methods": {m: {"name": m} for m in methods}, "seeds": list(seeds),
                      "metric_specs": {s: {"id": s} for s in set(METRIC_SPECS.values())},
                      "metric_spec_ids": dict(METRIC_SPECS), "versions": {}, "world_size": 1, **run.path_fields()})
    return run.path
