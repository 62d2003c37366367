"""Video URLs for the dashboard: only files the app chose to show are served, by opaque token, from disk."""

from __future__ import annotations

import hashlib
import html
import os
from pathlib import Path

ROUTE = "/run-files"
_FILES: dict[str, str] = {}


def video_url(path: str | os.PathLike) -> str:
    """Register a file and return its URL (relative to the server root, honouring server.baseUrlPath)."""
    from streamlit import config

    real = os.path.realpath(path)
    token = hashlib.sha1(real.encode()).hexdigest()[:24] + Path(real).suffix.lower()
    _FILES[token] = real
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"{'/' + base if base else ''}{ROUTE}/{token}"


def video_html(path: str | os.PathLike, caption: str = "", height: int = 180) -> str:
    """A looping, muted, autoplaying <video> with a caption; missing files become a note, not a broken player."""
    label = f"<div style='font-size:0.8rem;color:#555;overflow-wrap:anywhere'>{html.escape(caption)}</div>"
    if not Path(path).is_file():
        return f"<div style='height:{height}px;color:#a33'>missing: {html.escape(str(path))}</div>{label}"
    return (f"<video src='{video_url(path)}' autoplay loop muted playsinline preload='auto' "
            f"style='width:100%;max-height:{height}px;background:#000'></video>{label}")


async def serve_file(request):
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse

    path = _FILES.get(request.path_params["token"])
    if path is None or not os.path.isfile(path):
        raise HTTPException(status_code=404, detail="not found")
    media_type = "video/mp4" if path.endswith(".mp4") else None
    return FileResponse(path, media_type=media_type)
