"""Command-line options shared by `eval.run`, `eval.score` and `eval.rescore`: which metrics to compute and
each metric's own options (declared by the metric class, so a registered metric brings its options along)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def method_options() -> dict:
    """What the environment tells the methods a command creates (eval.methods.create_method): $VMC_BACKBONE, the
    backbone of a method named without one, and $VMC_CACHE, the user cache that holds the tiny models. Read here,
    by the command lines, and passed down."""
    cache = os.environ.get("VMC_CACHE")
    return {"default_backbone": os.environ.get("VMC_BACKBONE"), "cache": Path(cache) if cache else None}


def add_metric_args(p: argparse.ArgumentParser):
    from eval.metrics import available_metrics

    g = p.add_argument_group("metrics")
    g.add_argument("--metrics", default=None, metavar="NAME,…",
                   help=f"metrics to compute, of {', '.join(available_metrics())} (default: every default one, "
                        "and the oracle for benchmarks that ask for it)")
    for cls in available_metrics().values():
        cls.add_options(g)
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def selected_metrics(args, defaults: dict) -> list[str]:
    """The names --metrics gives (checked), else every metric that wants to run by default."""
    from eval.errors import UserError
    from eval.metrics import available_metrics

    available = available_metrics()
    if not args.metrics:
        return [name for name, cls in available.items() if cls.wanted(args, defaults)]
    names = list(dict.fromkeys(n.strip() for n in args.metrics.split(",") if n.strip()))
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise UserError(f"--metrics: unknown metric {', '.join(map(repr, unknown)) or '(none given)'}; "
                        f"available: {', '.join(available)}")
    return names


def build_scorer(args, defaults: dict | None = None, device: str | None = None):
    """The Scorer the options describe (models load here, after the arguments are checked)."""
    from eval.metrics import available_metrics
    from eval.scoring import Scorer

    defaults = defaults or {}
    available = available_metrics()
    return Scorer([available[name].from_options(args, defaults, device or args.device)
                   for name in selected_metrics(args, defaults)])
