"""Answer ingestion: each platform's own results format, read into one long table of checked answers.

Formats (detected from the content): the HTML form's JSON or CSV, a plain long CSV
(`rater_id,item_id,blind_id,question,score`), MTurk's batch results CSV (`Answer.<blind>__<question>` columns or
`Answer.taskAnswers`), Label Studio's JSON export, and Qualtrics' CSV export with its three header rows.
Every answer remembers where it came from; malformed rows, out-of-range scores, unknown ids and duplicates become
problems naming the file and line (or JSON element), never silently dropped and never counted.
A row with the score "unplayable" and no question is the HTML form's report of a video the rater's browser could
not play (blind id "reference": the item's reference clip): never a rating, it excuses the ratings it prevented.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from eval.errors import UserError, read_json
from human_study.export.qualtrics import matrix_rows

LONG_COLUMNS = ("rater_id", "item_id", "blind_id", "question", "score")
FIELD_RE = re.compile(r"^(?P<blind>[A-Za-z0-9]+)__(?P<question>[A-Za-z0-9_]+)$")
IMPORT_RE = re.compile(r"^QID(?P<qid>\d+)_(?P<row>\d+)$")
UNPLAYABLE = "unplayable"
REFERENCE = "reference"


@dataclass
class Session:
    """One rater's submission in one file. `scope`: "all" (the whole study was assigned, as in the HTML form,
    Qualtrics and the long CSV, which is also the HTML form's CSV) or "touched" (only the items it answered, as
    in MTurk HITs and Label Studio tasks)."""
    rater_id: str
    where: str
    scope: str
    finished: bool = True
    items: set = field(default_factory=set)


@dataclass
class Answer:
    rater_id: str
    item_id: str
    blind_id: str
    question: str
    score: int
    where: str
    session: int


@dataclass
class Report:
    """A video the rater skipped because it could not be played; `blind_id` REFERENCE is the item's reference."""
    rater_id: str
    item_id: str
    blind_id: str
    where: str
    session: int


class Collector:
    """Checks raw answers against the study and records problems."""

    def __init__(self, study: dict):
        self.items = {item["item_id"]: {c["blind_id"] for c in item["candidates"]} for item in study["items"]}
        self.blind_item = {b: i for i, bs in self.items.items() for b in bs}
        self.questions = {q["id"] for q in study["questions"]}
        self.scores = {int(s) for s in study["scores"]}
        self.answers: list[Answer] = []
        self.unplayable: list[Report] = []
        self.sessions: list[Session] = []
        self.problems: list[tuple[str, str]] = []
        self._seen: dict[tuple, str] = {}

    def session(self, rater_id: str, where: str, scope: str, finished: bool = True) -> int | None:
        rater_id = str(rater_id or "").strip()
        if not rater_id:
            self.problems.append((where, "no rater id"))
            return None
        self.sessions.append(Session(rater_id, where, scope, finished))
        return len(self.sessions) - 1

    def add(self, session: int | None, item_id, blind_id, question, score, where: str):
        if session is None:
            return
        rater = self.sessions[session].rater_id
        item_id, blind_id, question = (str(v if v is not None else "").strip() for v in (item_id, blind_id, question))
        unplayable = str(score).strip() == UNPLAYABLE
        if not item_id and blind_id in self.blind_item:
            item_id = self.blind_item[blind_id]
        problem = None
        if item_id not in self.items:
            problem = f"unknown item id '{item_id}'"
        elif unplayable and question:
            problem = f"an '{UNPLAYABLE}' report is about a whole video, not question '{question}'"
        elif unplayable and blind_id == REFERENCE:
            pass  # the item's reference clip, which every item has
        elif blind_id not in self.blind_item:
            problem = f"unknown video id '{blind_id}'"
        elif blind_id not in self.items[item_id]:
            problem = f"video id '{blind_id}' belongs to {self.blind_item[blind_id]}, not {item_id}"
        elif not unplayable and question not in self.questions:
            problem = f"unknown question '{question}' (questions: {', '.join(sorted(self.questions))})"
        if problem is None and not unplayable:
            value = parse_score(score)
            if value is None:
                problem = f"malformed score '{score}'"
            elif value not in self.scores:
                problem = f"score {value} out of range {min(self.scores)}–{max(self.scores)}"
        if problem is None:
            first = self._seen.get((rater, item_id, blind_id, question))
            if first is not None:
                what = (f"report of rater '{rater}' that {blind_id} is unplayable" if unplayable else
                        f"answer of rater '{rater}' to {blind_id}/{question}")
                problem = f"duplicate {what} (first at {first})"
        if problem is not None:
            self.problems.append((where, problem))
            return
        self._seen[(rater, item_id, blind_id, question)] = where
        self.sessions[session].items.add(item_id)
        if unplayable:
            self.unplayable.append(Report(rater, item_id, blind_id, where, session))
        else:
            self.answers.append(Answer(rater, item_id, blind_id, question, value, where, session))


def parse_score(value) -> int | None:
    """An integer score from 4, 4.0, "4" or Qualtrics' "4 = good"; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    m = re.match(r"^\s*(\d+)(\.0+)?\s*(=.*)?$", str(value))
    return int(m.group(1)) if m else None


def _read_csv(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); export or save the answers as UTF-8 CSV") from None
    except csv.Error as e:
        raise UserError(f"{path}: not a readable CSV ({e})") from None


def _csv_rows(rows: list[list[str]], header_rows: int = 1):
    """(line number, dict) per data row; a row with the wrong number of fields is a problem, yielded as None."""
    header = rows[0]
    for i, row in enumerate(rows[header_rows:], header_rows + 1):
        if not any(cell.strip() for cell in row):
            continue
        yield i, (dict(zip(header, row)) if len(row) == len(header) else
                  f"malformed row: {len(row)} fields, the header has {len(header)}")


def ingest_long_csv(c: Collector, path: Path, rows: list[list[str]]):
    sessions: dict[str, int | None] = {}
    for line, row in _csv_rows(rows):
        where = f"{path}: line {line}"
        if isinstance(row, str):
            c.problems.append((where, row))
            continue
        rater = row["rater_id"].strip()
        if not rater:
            c.problems.append((where, "no rater id"))
            continue
        if rater not in sessions:
            sessions[rater] = c.session(rater, str(path), "all")
        c.add(sessions[rater], row["item_id"], row["blind_id"], row["question"], row["score"], where)


def ingest_mturk(c: Collector, path: Path, rows: list[list[str]]):
    for line, row in _csv_rows(rows):
        where = f"{path}: line {line}"
        if isinstance(row, str):
            c.problems.append((where, row))
            continue
        fields = {k[len("Answer."):]: v for k, v in row.items() if k.startswith("Answer.")}
        if "taskAnswers" in fields:
            try:
                task = json.loads(fields.pop("taskAnswers") or "[{}]")
                fields.update(task[0] if isinstance(task, list) and task else task)
            except (json.JSONDecodeError, AttributeError, TypeError):
                c.problems.append((where, "Answer.taskAnswers is not valid JSON"))
                continue
        item_id = row.get("Input.item_id") or fields.get("item_id") or ""
        session = c.session(row.get("WorkerId", ""), where, "touched",
                            finished=row.get("AssignmentStatus", "Submitted") != "Rejected")
        for name, value in fields.items():
            m = FIELD_RE.match(name)
            if m and str(value).strip() not in ("", "{}"):
                c.add(session, item_id, m["blind"], m["question"], value, f"{where} (Answer.{name})")


def _rater_of(completed_by) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id") or "")
    return "" if completed_by is None else str(completed_by)


def is_labelstudio_export(data) -> bool:
    """Label Studio's JSON export: a non-empty list of tasks, each an object with its `data` and `annotations`."""
    return isinstance(data, list) and bool(data) and all(
        isinstance(t, dict) and isinstance(t.get("data"), dict) and isinstance(t.get("annotations"), list)
        for t in data)


def ingest_labelstudio(c: Collector, path: Path, tasks: list):
    sessions: dict[str, int | None] = {}
    for t, task in enumerate(tasks):
        data = task.get("data", {}) if isinstance(task, dict) else {}
        for a, annotation in enumerate(task.get("annotations", []) if isinstance(task, dict) else []):
            where = f"{path}: task {task.get('id', t)} annotation {annotation.get('id', a)}"
            if annotation.get("was_cancelled"):
                continue
            rater = _rater_of(annotation.get("completed_by"))
            if rater not in sessions:
                sessions[rater] = c.session(rater, str(path), "touched")
            for r, result in enumerate(annotation.get("result", [])):
                if result.get("type") != "rating":
                    continue
                c.add(sessions[rater], data.get("item_id"), data.get("blind_id"), result.get("from_name"),
                      (result.get("value") or {}).get("rating"), f"{where} result {r}")


def ingest_qualtrics(c: Collector, path: Path, rows: list[list[str]], study: dict):
    header, import_ids = rows[0], rows[2]
    columns = {}
    for k, cell in enumerate(import_ids):
        try:
            m = IMPORT_RE.match(json.loads(cell).get("ImportId", ""))
        except (json.JSONDecodeError, AttributeError):
            m = None
        if m:
            columns[k] = (int(m["qid"]), int(m["row"]))
    for line, row in _csv_rows(rows, header_rows=3):
        where = f"{path}: line {line}"
        if isinstance(row, str):
            c.problems.append((where, row))
            continue
        cells = list(row.values())
        rater = (row.get("PROLIFIC_PID") or "").strip() or row.get("ResponseId", "")
        finished = str(row.get("Finished", "1")).strip().lower() in ("1", "true")
        session = c.session(rater, where, "all", finished=finished)
        for k, (qid, r) in columns.items():
            value = cells[k].strip()
            if not value:
                continue
            col = f"{where} ({header[k]})"
            if not 1 <= qid <= len(study["items"]) or not 1 <= r <= len(matrix_rows(study, study["items"][qid - 1])):
                c.problems.append((col, f"column QID{qid}_{r} is not part of this study's survey"))
                continue
            item = study["items"][qid - 1]
            blind, question = matrix_rows(study, item)[r - 1]
            c.add(session, item["item_id"], blind, question, value, col)


def ingest_html_json(c: Collector, path: Path, data: dict, study: dict):
    if data.get("study_id") != study["study_id"]:
        raise UserError(f"{path}: answers to study '{data.get('study_id')}', not '{study['study_id']}'")
    session = c.session(data.get("rater_id"), str(path), "all", finished=bool(data.get("complete")))
    answers = data.get("answers")
    if not isinstance(answers, list):
        raise UserError(f"{path}: 'answers' must be a list")
    for i, a in enumerate(answers):
        where = f"{path}: answers[{i}]"
        if not isinstance(a, dict):
            c.problems.append((where, "malformed answer (not an object)"))
            continue
        c.add(session, a.get("item_id"), a.get("blind_id"), a.get("question"), a.get("score"), where)


def ingest(paths: list[Path], study: dict) -> Collector:
    """Read every answers file into one Collector; an unreadable or unrecognised file is a UserError."""
    c = Collector(study)
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"{path}: no such answers file")
        if path.suffix.lower() == ".json":
            data = read_json(path, encoding="utf-8-sig")
            if is_labelstudio_export(data):
                ingest_labelstudio(c, path, data)
            elif isinstance(data, dict) and data.get("format") == "likert-study/answers":
                ingest_html_json(c, path, data, study)
            else:
                raise UserError(f"{path}: unrecognised JSON (expected the HTML form's answers, an object with "
                                f"\"format\": \"likert-study/answers\", or a Label Studio export, a non-empty list "
                                f"of tasks with 'data' and 'annotations')")
            continue
        rows = _read_csv(path)
        if not rows:
            raise UserError(f"{path}: empty file")
        header = [h.strip() for h in rows[0]]
        rows[0] = header
        if set(LONG_COLUMNS) <= set(header):
            ingest_long_csv(c, path, rows)
        elif len(rows) >= 3 and rows[2] and rows[2][0].startswith('{"ImportId"'):
            ingest_qualtrics(c, path, rows, study)
        elif any(h.startswith("Answer.") for h in header):
            ingest_mturk(c, path, rows)
        else:
            raise UserError(f"{path}: unrecognised answers CSV (expected columns {','.join(LONG_COLUMNS)}, MTurk "
                            f"'Answer.*' columns, or a Qualtrics export with three header rows)")
    return c
