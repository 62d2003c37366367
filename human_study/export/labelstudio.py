"""Label Studio: a labeling config (`<Video>` + one `<Rating>` per question) and the tasks JSON.

One task per (item, candidate): the prompt, the reference and the video to rate, in a seeded shuffled order.
The config is built with ElementTree so question texts are XML-escaped; Label Studio renders `$prompt` as text.
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

from human_study.export.common import media_url


def config_xml(study: dict) -> str:
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Text prompt: $prompt")
    ET.SubElement(view, "Header", value="Reference video", size="5")
    ET.SubElement(view, "Video", name="reference", value="$reference")
    ET.SubElement(view, "Header", value="Video to rate (watch it to the end)", size="5")
    ET.SubElement(view, "Video", name="video", value="$video")
    anchors = ", ".join(f"{k} = {v}" for k, v in study["scores"].items())
    for q in study["questions"]:
        ET.SubElement(view, "Header", value=f"{q['label']}: {q['text']} ({anchors})", size="6")
        ET.SubElement(view, "Rating", name=q["id"], toName="video", maxRating=str(len(study["scores"])),
                      required="true")
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def export(study: dict, rater_dir: Path, options: dict):
    out = rater_dir / "labelstudio"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.xml").write_text(config_xml(study), encoding="utf-8")
    tasks = [{"data": {"item_id": item["item_id"], "blind_id": c["blind_id"], "prompt": item["prompt"],
                       "reference": media_url(options, item["reference"]), "video": media_url(options, c["video"])}}
             for item in study["items"] for c in item["candidates"]]
    random.Random(study["seed"]).shuffle(tasks)
    (out / "tasks.json").write_text(json.dumps(tasks, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
