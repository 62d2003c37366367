"""A study's wording and presentation from a small YAML file (`python -m human_study export --config FILE`).

Every key is optional; what a file leaves out stays as the VMC study has it (human_study.questions):

    title: Video rating study
    instructions: For each set you will see ...        # replaces the opening paragraph of the HTML form
    consent: I agree that my ratings are stored ...     # shown with a box to tick before Start
    duration_minutes: 15                                # "Estimated duration: about 15 minutes."
    questions:                                          # each with id, label, text
      - {id: motion, label: Motion preservation, text: How well does ...}
    scale: {1: very poor, 2: poor, 3: fair, 4: good, 5: excellent}   # integer scores and their anchors
    autoplay: true                                      # reference and candidate videos (default: candidates only)
    loop: false                                         # the videos loop
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from eval.errors import UserError
from human_study.questions import ANCHORS, QUESTIONS

TEXT_KEYS = ("title", "instructions", "consent")
KEYS = {*TEXT_KEYS, "duration_minutes", "questions", "scale", "autoplay", "loop"}
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def load_config(path: Path | None) -> dict:
    """{questions, scale, form}: the study's questions and scale (defaults: the VMC study's) and what the HTML
    form shows beyond them (empty for no file, so that a default study's form is as it was)."""
    if path is None:
        return {"questions": QUESTIONS, "scale": dict(ANCHORS), "form": {}}
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such study config") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{path}: not a YAML study config ({str(e).splitlines()[0]})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a study config is a mapping of {', '.join(sorted(KEYS))}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KEYS))}")
    form = {}
    for key in TEXT_KEYS:
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key].strip():
                raise UserError(f"{path}: '{key}' must be a non-empty text")
            form[key] = raw[key].strip()
    if "duration_minutes" in raw:
        d = raw["duration_minutes"]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not d > 0:
            raise UserError(f"{path}: 'duration_minutes' must be a positive number, got {d!r}")
        form["duration_minutes"] = d
    for key in ("autoplay", "loop"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise UserError(f"{path}: '{key}' must be true or false, got {raw[key]!r}")
            form[key] = raw[key]
    return {"questions": _questions(path, raw.get("questions", QUESTIONS)),
            "scale": _scale(path, raw.get("scale", ANCHORS)), "form": form}


def _questions(path, questions) -> list[dict]:
    if not isinstance(questions, list) or not questions:
        raise UserError(f"{path}: 'questions' must be a non-empty list of {{id, label, text}}")
    out = []
    for i, q in enumerate(questions, 1):
        if not isinstance(q, dict) or set(q) != {"id", "label", "text"} or \
                not all(isinstance(v, str) and v.strip() for v in q.values()):
            raise UserError(f"{path}: question #{i} must have exactly id, label and text, each a non-empty text")
        if not ID_RE.match(q["id"]):
            raise UserError(f"{path}: question #{i}: id '{q['id']}' must be lower-case letters, digits and '_'")
        out.append({k: q[k].strip() for k in ("id", "label", "text")})
    ids = [q["id"] for q in out]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: a question id is used twice ({', '.join(ids)})")
    return out


def _scale(path, scale) -> dict[int, str]:
    if not isinstance(scale, dict) or len(scale) < 2 or \
            not all(isinstance(k, int) and not isinstance(k, bool) and isinstance(v, str) for k, v in scale.items()):
        raise UserError(f"{path}: 'scale' must map two or more integer scores to their anchors, e.g. {{1: poor, "
                        "2: fair, 3: good}")
    scores = sorted(scale)
    if scores != list(range(scores[0], scores[-1] + 1)):
        raise UserError(f"{path}: 'scale' must be consecutive integers, got {', '.join(map(str, scores))}")
    return {k: scale[k].strip() for k in scores}
