"""Metrics. Each is a small class with `name`, `fields` (field → definition), `ranges` (field → the interval
its values lie in), `spec()` (everything that produced the number) and `score(...)` → (values, details); a
value may be a MetricUndefined with its reason."""

import hashlib
import json

from eval.metrics.clip import ClipMetric
from eval.metrics.motion import MotionMetric
from eval.metrics.oracle import OracleMetric

METRIC_ORDER = [*ClipMetric.fields, *MotionMetric.fields, *OracleMetric.fields]  # the paper's columns first
FIELD_RANGES = {**ClipMetric.ranges, **MotionMetric.ranges, **OracleMetric.ranges}


def spec_id(spec: dict) -> str:
    """Short stable hash of a spec: two numbers are comparable exactly when their spec ids match."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


__all__ = ["FIELD_RANGES", "METRIC_ORDER", "ClipMetric", "MotionMetric", "OracleMetric", "spec_id"]
