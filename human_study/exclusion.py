"""Exclusion rules, applied to whole raters in a fixed order; the report says how many each rule removed.

1. incomplete session: a submission that the platform marks unfinished, or that lacks a rating it was assigned
   (every video × question of the whole study for the HTML form, Qualtrics and the long CSV; of the items it
   touched for MTurk and Label Studio, where raters take items one by one), other than the ratings of videos it
   reported unplayable (every video of an item whose reference clip it reported): it rated all it could;
2. failed attention checks: more than `max_failed_checks` checks failed (the reference clip's own motion
   preservation below its minimum, or the text alignment of a video shown with a mismatched prompt above its
   maximum; thresholds from the study key);
3. straight-lining: every rating of the rater identical, over at least `straightline_min` ratings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from human_study.ingest import REFERENCE, Collector


@dataclass
class Rules:
    max_failed_checks: int = 0
    straightline_min: int = 8


def _incomplete(c: Collector, study: dict) -> set[str]:
    expected_item = {item["item_id"]: {(cand["blind_id"], q["id"]) for cand in item["candidates"]
                                       for q in study["questions"]} for item in study["items"]}
    covered = defaultdict(set)  # (video, question) rated or excused, per session
    for a in c.answers:
        covered[a.session].add((a.blind_id, a.question))
    for r in c.unplayable:  # a report excuses the ratings it prevented
        if r.blind_id == REFERENCE:
            covered[r.session] |= expected_item[r.item_id]
        else:
            covered[r.session] |= {(r.blind_id, q["id"]) for q in study["questions"]}
    flagged = set()
    for s, session in enumerate(c.sessions):
        items = expected_item if session.scope == "all" else session.items
        expected = set().union(*(expected_item[i] for i in items)) if items else set()
        if not session.finished or not expected or not expected <= covered[s]:
            flagged.add(session.rater_id)
    return flagged


def _failed_checks(c: Collector, key: dict, rules: Rules) -> set[str]:
    failures = defaultdict(int)
    for a in c.answers:
        kind = key["blind"][a.blind_id]["kind"]
        rule = key["check_rules"].get(kind)
        if rule and a.question == rule["question"]:
            if a.score < rule.get("min", a.score) or a.score > rule.get("max", a.score):
                failures[a.rater_id] += 1
    return {r for r, n in failures.items() if n > rules.max_failed_checks}


def _straightliners(c: Collector, rules: Rules) -> set[str]:
    scores = defaultdict(list)
    for a in c.answers:
        scores[a.rater_id].append(a.score)
    return {r for r, s in scores.items() if len(s) >= rules.straightline_min and len(set(s)) == 1}


def apply_exclusions(c: Collector, study: dict, key: dict, rules: Rules) -> tuple[set[str], list[dict]]:
    """(raters kept, one report row per rule: raters it flagged, removed, and left after it)."""
    raters = {s.rater_id for s in c.sessions}
    kept = set(raters)
    report = [{"rule": "all", "description": "raters with answers", "raters_flagged": 0, "raters_removed": 0,
               "raters_left": len(raters), "removed": ""}]
    for rule, description, flagged in (
            ("incomplete", "incomplete session", _incomplete(c, study)),
            ("attention", f"failed more than {rules.max_failed_checks} attention check(s)",
             _failed_checks(c, key, rules)),
            ("straightlining", f"identical score on all of at least {rules.straightline_min} ratings",
             _straightliners(c, rules))):
        removed = kept & flagged
        kept -= removed
        report.append({"rule": rule, "description": description, "raters_flagged": len(flagged & raters),
                       "raters_removed": len(removed), "raters_left": len(kept), "removed": " ".join(sorted(removed))})
    return kept, report
