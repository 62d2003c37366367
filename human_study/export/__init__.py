"""Exporters: each writes what one platform needs into the study's `rater/` folder (never the key)."""

from __future__ import annotations

from human_study.export import html, labelstudio, mturk, qualtrics

FORMATS = {"html": html.export, "mturk": mturk.export, "labelstudio": labelstudio.export,
           "qualtrics": qualtrics.export}
