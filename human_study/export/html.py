"""A self-contained static HTML form: works from the folder (file://) or any static host.

The rater id comes from `?rater=…` or Prolific's `?PROLIFIC_PID=…` (else the page asks for it); the item order is
shuffled per rater; a video's ratings unlock only once it (and the reference) has been watched to the end; a video
that cannot be played says so and may be skipped, which reports it in the answers (a row with no question and the
score "unplayable"; blind id "reference" for the reference clip, which skips the whole set); Back returns to earlier
sets; answers and progress persist in the browser across reloads and are downloaded as JSON or CSV, optionally
POSTed to `post_url`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

TEMPLATE = Path(__file__).with_name("form.html")


def script_json(data) -> str:
    """JSON safe inside a <script> element: '<', '>' and '&' escaped so no text can close the element."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def export(study: dict, rater_dir: Path, options: dict):
    config = {"completion_url": options.get("completion_url"), "post_url": options.get("post_url"),
              **options.get("form", {})}  # title, instructions, consent, duration, autoplay, loop (config file)
    values = {"__STUDY_JSON__": script_json(study), "__CONFIG_JSON__": script_json(config)}
    page = re.sub("__STUDY_JSON__|__CONFIG_JSON__", lambda m: values[m.group(0)], TEMPLATE.read_text(encoding="utf-8"))
    (rater_dir / "index.html").write_text(page, encoding="utf-8")
