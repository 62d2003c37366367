"""Evaluation engine: video I/O, benchmark manifests, metrics, and the `eval.run` / `eval.score` commands."""
