"""Helpers shared by the platform exporters."""

from __future__ import annotations


def media_url(options: dict, relative: str) -> str:
    """Where a platform's raters fetch a video: `--media-url` + file name, or the path relative to `rater/`."""
    base = options.get("media_url")
    return f"{base.rstrip('/')}/{relative.split('/', 1)[1]}" if base else relative

