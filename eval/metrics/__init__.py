"""Metrics, one small class each against the contract in `eval.metrics.base`, found through a registry: the
built-ins below and whatever installed packages register in the `vmc_suite.metrics` entry-point group. What
the suite computes, and how every reader interprets a field, comes from here."""

import hashlib
import json
from functools import lru_cache

from eval.errors import UserError
from eval.metrics.base import Field, Metric, Sample
from eval.metrics.clip import ClipMetric
from eval.metrics.dino import DinoMetric
from eval.metrics.motion import MotionMetric
from eval.metrics.oracle import OracleMetric
from eval.metrics.tracks import MTBenchTrackMetric, TrackMotionMetric
from eval.registry import Registry

ENTRY_POINT_GROUP = "vmc_suite.metrics"
BUILTIN = {m.name: m for m in (ClipMetric, MotionMetric, TrackMotionMetric, OracleMetric,  # the paper's first
                               MTBenchTrackMetric, DinoMetric)}
REGISTRY = Registry("metric", ENTRY_POINT_GROUP, Metric, BUILTIN)


@lru_cache(maxsize=1)
def available_metrics() -> dict[str, type[Metric]]:
    """name → metric class: the built-ins, then the registered ones by name (no two may declare one field).
    Cached; a test that registers a metric at run time clears it with available_metrics.cache_clear()."""
    found = REGISTRY.load_all()
    owner: dict[str, str] = {}
    for name, cls in found.items():
        for f in cls.fields:
            if f in owner:
                raise UserError(f"metrics '{owner[f]}' and '{name}' both declare the field '{f}'")
            owner[f] = name
    return found


def all_fields() -> dict[str, Field]:
    """Every field of every available metric, in the order tables show them."""
    return {f: d for cls in available_metrics().values() for f, d in cls.fields.items()}


def field_info(name: str) -> Field | None:
    """The declaration of a field (None for what no metric declares, e.g. the protocol facts)."""
    return all_fields().get(name)


def spec_id(spec: dict) -> str:
    """Short stable hash of a spec: two numbers are comparable exactly when their spec ids match."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


__all__ = ["BUILTIN", "ClipMetric", "DinoMetric", "Field", "Metric", "MotionMetric", "MTBenchTrackMetric", "OracleMetric",
           "Sample", "TrackMotionMetric", "all_fields", "available_metrics", "field_info", "spec_id"]
