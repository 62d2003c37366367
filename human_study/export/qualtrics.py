"""Qualtrics: a `.qsf` survey with one Likert matrix per item (rows: each video × question; columns: 1–5).

Question i (1-based, in study order) is `QID<i>` with export tag `<item_id>`; its rows are numbered video by
video, question by question, so the ingester maps a CSV column `QID<i>_<row>` (the third header row) back to a
(blind id, question) from the study alone. Items are shown one per page in random order; a Prolific id arrives
as embedded data `PROLIFIC_PID`, and `--completion-url` becomes the end-of-survey redirect.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from human_study.export.common import media_url

SURVEY_ID = "SV_likertStudy"


def matrix_rows(study: dict, item: dict) -> list[tuple[str, str]]:
    """(blind_id, question) of each matrix row, row 1 first."""
    return [(c["blind_id"], q["id"]) for c in item["candidates"] for q in study["questions"]]


def _element(kind: str, primary: str, payload, secondary=None) -> dict:
    return {"SurveyID": SURVEY_ID, "Element": kind, "PrimaryAttribute": primary, "SecondaryAttribute": secondary,
            "TertiaryAttribute": None, "Payload": payload}


def _video(url: str) -> str:
    return (f'<video src="{html.escape(url, quote=True)}" controls muted playsinline '
            f'style="max-width:360px"></video>')


def _question(study: dict, item: dict, number: int, options: dict) -> dict:
    letters = {c["blind_id"]: chr(65 + k) for k, c in enumerate(item["candidates"])}
    labels = {q["id"]: q["label"] for q in study["questions"]}
    videos = "".join(f"<p><b>Video {letters[c['blind_id']]}</b><br>{_video(media_url(options, c['video']))}</p>"
                     for c in item["candidates"])
    text = (f"<p>Text prompt: <q>{html.escape(item['prompt'])}</q></p>"
            f"<p><b>Reference video</b><br>{_video(media_url(options, item['reference']))}</p>{videos}"
            "<p>Rate every video on each question.</p>")
    rows = matrix_rows(study, item)
    choices = {str(r): {"Display": html.escape(f"Video {letters[b]}: {labels[q]}")} for r, (b, q) in
               enumerate(rows, 1)}
    answers = {s: {"Display": html.escape(f"{s} = {a}")} for s, a in study["scores"].items()}
    qid = f"QID{number}"
    payload = {
        "QuestionText": text, "DataExportTag": item["item_id"], "QuestionID": qid, "QuestionType": "Matrix",
        "Selector": "Likert", "SubSelector": "SingleAnswer",
        "Configuration": {"QuestionDescriptionOption": "SpecifyLabel", "TextPosition": "inline",
                          "ChoiceColumnWidth": 30, "RepeatHeaders": "none", "WhiteSpace": "OFF", "MobileFirst": True},
        "QuestionDescription": item["item_id"], "Choices": choices, "ChoiceOrder": list(choices),
        "Answers": answers, "AnswerOrder": list(answers), "RecodeValues": {s: s for s in answers},
        "Validation": {"Settings": {"ForceResponse": "ON", "ForceResponseType": "ON", "Type": "None"}},
        "Language": [], "NextChoiceId": len(choices) + 1, "NextAnswerId": len(answers) + 1,
        "DataVisibility": {"Private": False, "Hidden": False},
    }
    return _element("SQ", qid, payload, secondary=item["item_id"])


def survey(study: dict, options: dict) -> dict:
    items = study["items"]
    questions = [_question(study, item, i, options) for i, item in enumerate(items, 1)]
    elements = []
    for i in range(1, len(items) + 1):
        elements.append({"Type": "Question", "QuestionID": f"QID{i}"})
        if i < len(items):
            elements.append({"Type": "Page Break"})
    block = {"Type": "Standard", "SubType": "", "Description": "Videos", "ID": "BL_videos",
             "BlockElements": elements,
             "Options": {"BlockLocking": "false", "RandomizeQuestions": "RandomWithXPerBlock",
                         "Randomization": {"Advanced": None, "TotalRandSubset": len(items), "QuestionsPerPage": 1}}}
    flow = [{"Type": "EmbeddedData", "FlowID": "FL_2",
             "EmbeddedData": [{"Description": "PROLIFIC_PID", "Type": "Custom", "Field": "PROLIFIC_PID",
                               "VariableType": "String", "DataVisibility": [], "AnalyzeText": False}]},
            {"ID": "BL_videos", "Type": "Standard", "FlowID": "FL_3"}]
    survey_options = {"BackButton": "false", "SaveAndContinue": "true", "SurveyProtection": "PublicSurvey",
                      "ProgressBarDisplay": "Text", "PartialData": "+1 week", "NextButton": " → ",
                      "SurveyTermination": "Redirect" if options.get("completion_url") else "DefaultMessage"}
    if options.get("completion_url"):
        survey_options["EOSRedirectURL"] = options["completion_url"]
    return {
        "SurveyEntry": {"SurveyID": SURVEY_ID, "SurveyName": f"Video rating study {study['study_id']}",
                        "SurveyDescription": None, "SurveyLanguage": "EN", "SurveyStatus": "Inactive"},
        "SurveyElements": [
            _element("BL", "Survey Blocks", [block]),
            _element("FL", "Survey Flow", {"Flow": flow, "Properties": {"Count": 3}, "FlowID": "FL_1",
                                            "Type": "Root"}),
            _element("SO", "Survey Options", survey_options),
            _element("QC", "Survey Question Count", None, secondary=str(len(items))),
            *questions,
        ],
    }


def export(study: dict, rater_dir: Path, options: dict):
    out = rater_dir / "qualtrics"
    out.mkdir(parents=True, exist_ok=True)
    (out / "survey.qsf").write_text(json.dumps(survey(study, options), indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
