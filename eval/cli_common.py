"""Command-line options shared by `eval.run` and `eval.score`."""

from __future__ import annotations

import argparse


def add_metric_args(p: argparse.ArgumentParser):
    g = p.add_argument_group("metrics")
    g.add_argument("--clip-model", default=None,
                   help="open_clip model name, path to a model-config JSON, or hf:ID_OR_DIR for a Hugging Face "
                        "transformers CLIP model (default: the benchmark's, else ViT-B-32)")
    g.add_argument("--clip-pretrained", default=None,
                   help="open_clip pretrained tag or a local checkpoint file (default: the benchmark's, else openai; "
                        "not for hf: models, which bring their weights)")
    g.add_argument("--clip-frames", type=int, default=None,
                   help="score this many uniformly sampled frames per video (default: all)")
    g.add_argument("--clip-dtype", choices=["fp32", "fp16", "bf16"], default=None,
                   help="CLIP compute dtype (default: fp16 on GPU, fp32 on CPU)")
    g.add_argument("--batch-size", type=int, default=256, help="frames per CLIP encoder batch")
    g.add_argument("--oracle", choices=["shapes", "none"], default=None,
                   help="shapes-world oracle metrics (default: on for benchmarks that ask for them)")
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def build_scorer(args, defaults: dict | None = None, device: str | None = None):
    """The Scorer the options describe (torch and open_clip load here, after the arguments are checked)."""
    import torch

    from eval.metrics import ClipMetric, MotionMetric, OracleMetric
    from eval.scoring import Scorer

    defaults = defaults or {}
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(args.clip_dtype)
    model = args.clip_model or defaults.get("clip_model", "ViT-B-32")
    # an hf: model brings its weights: the benchmark's open_clip weights default does not apply to it
    pretrained = args.clip_pretrained if model.startswith("hf:") else (
        args.clip_pretrained or defaults.get("clip_pretrained", "openai"))
    clip = ClipMetric(model=model, pretrained=pretrained,
                      device=device or args.device, dtype=dtype, batch_size=args.batch_size,
                      num_frames=args.clip_frames)
    oracle = (args.oracle or defaults.get("oracle", "none")) == "shapes"
    return Scorer(clip, MotionMetric(), OracleMetric() if oracle else None)
