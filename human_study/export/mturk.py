"""Amazon Mechanical Turk: a HIT template (crowd-html-elements) and its input CSV, one HIT per item.

Every CSV value reaches the page through `${…}` substitution, so the prompt is percent-encoded in the CSV and
decoded into text by the page's script: whatever MTurk does or does not escape, a prompt can never become markup.
Each rating is a native radio input named `<blind_id>__<question>`, so results arrive as `Answer.<blind>__<q>`
columns (or inside `Answer.taskAnswers`, which the ingester also reads).
"""

from __future__ import annotations

import csv
import html
import random
from pathlib import Path
from urllib.parse import quote

from eval.spreadsheet import safe_row
from human_study.export.common import media_url
from human_study.export.html import script_json

TEMPLATE = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form answer-format="flatten-objects">
  <p>For the text prompt below you see a <b>reference video</b> and several <b>videos to rate</b>. Watch each
     video to the end, then rate it __SCALE__ on every question.</p>
  <p style="font-size:1.2em">Text prompt: <q id="prompt"></q></p>
  <h3>Reference video</h3>
  <video id="reference" src="${reference_url}" muted playsinline controls autoplay style="max-width:360px"></video>
  <h3>Videos to rate</h3>
  <div id="slots" style="display:flex;flex-wrap:wrap;gap:16px">
__SLOTS__
  </div>
  <input type="hidden" name="item_id" value="${item_id}">
</crowd-form>
<script>
  // The prompt arrives percent-encoded and is shown as text only.
  document.getElementById("prompt").textContent = decodeURIComponent("${prompt_encoded}");
  const questions = __QUESTIONS__;
  const scores = __SCORES__;
  document.querySelectorAll(".slot").forEach((slot, k) => {
    if (!slot.dataset.id) { slot.remove(); return; }
    const title = document.createElement("h4");
    title.textContent = "Video " + String.fromCharCode(65 + k);
    const video = document.createElement("video");
    Object.assign(video, {src: slot.dataset.url, muted: true, playsInline: true, controls: true, autoplay: true});
    video.style.maxWidth = "360px";
    slot.append(title, video);
    for (const q of questions) {
      const p = document.createElement("p");
      const b = document.createElement("b");
      b.textContent = q.label + ": ";
      b.title = q.text;
      p.append(b);
      for (const [score, anchor] of scores) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        Object.assign(input, {type: "radio", name: slot.dataset.id + "__" + q.id, value: score, required: true});
        label.append(input, " " + score + " " + anchor + " ");
        p.append(label);
      }
      slot.append(p);
    }
  });
</script>
"""


def export(study: dict, rater_dir: Path, options: dict):
    out = rater_dir / "mturk"
    out.mkdir(parents=True, exist_ok=True)
    slots = max(len(item["candidates"]) for item in study["items"])
    slot_html = "\n".join(f'    <div class="slot" data-id="${{video_{k}_id}}" data-url="${{video_{k}_url}}"></div>'
                          for k in range(1, slots + 1))
    questions = script_json([{"id": q["id"], "label": q["label"], "text": q["text"]} for q in study["questions"]])
    scores = script_json([[int(k), v] for k, v in study["scores"].items()])
    lo, hi = min(study["scores"], key=int), max(study["scores"], key=int)
    scale = html.escape(f"from {lo} ({study['scores'][lo]}) to {hi} ({study['scores'][hi]})")
    template = TEMPLATE.replace("__SLOTS__", slot_html).replace("__SCALE__", scale.replace("$", "&#36;"))
    for token, value in (("__QUESTIONS__", questions), ("__SCORES__", scores)):
        # '$' escaped too, so no question text can look like an MTurk ${placeholder}
        template = template.replace(token, value.replace("$", "\\u0024"))
    (out / "hit.html").write_text(template, encoding="utf-8")

    columns = ["item_id", "prompt_encoded", "reference_url"]
    for k in range(1, slots + 1):
        columns += [f"video_{k}_id", f"video_{k}_url"]
    items = list(study["items"])
    random.Random(study["seed"]).shuffle(items)  # HITs are served roughly in CSV order
    with open(out / "input.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(safe_row(columns))
        for item in items:
            # a leading '-' (left as is by percent-encoding) encoded too, so no cell looks like a formula
            prompt = quote(item["prompt"], safe="")
            row = [item["item_id"], "%2D" + prompt[1:] if prompt.startswith("-") else prompt,
                   media_url(options, item["reference"])]
            for k in range(slots):
                c = item["candidates"][k] if k < len(item["candidates"]) else None
                row += [c["blind_id"], media_url(options, c["video"])] if c else ["", ""]
            writer.writerow(safe_row(row))
