"""The four questions of the VMC human evaluation (Likert 1–5) and their anchors.

The wording follows the published study's four criteria (RECIPES.md, "Published table"); the ids are the column
names used in every export, answer file and table.
"""

from __future__ import annotations

ANCHORS = {1: "very poor", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}
SCORES = tuple(ANCHORS)

QUESTIONS = [
    {"id": "motion", "label": "Motion preservation",
     "text": "How well does this video reproduce the motion of the reference video?"},
    {"id": "appearance", "label": "Appearance diversity",
     "text": "How well does this video change the appearance of the reference as the text asks (new subject, "
             "colours, scene), rather than copying the reference?"},
    {"id": "text", "label": "Text alignment",
     "text": "How well does this video match the text prompt?"},
    {"id": "temporal", "label": "Temporal consistency",
     "text": "How smooth and consistent is this video over time (no flicker, no jumps, stable objects)?"},
]
QUESTION_IDS = tuple(q["id"] for q in QUESTIONS)


def anchor_label(score: int) -> str:
    return f"{score} = {ANCHORS[score]}"
