"""Appearance-invariant training prompts: keep the subject and the motion, drop scene and attribute detail.

"A cat is roaring on the grass under the tree." → "A cat is roaring."; "a red circle is moving to the right
on a blue background" → "a circle is moving to the right". A small hand-written grammar, deterministic and
model-free: the verb group is an auxiliary + -ing form, a bare -ing form, or a present-tense motion verb;
the subject shrinks to its determiners and head noun; after the verb only direction phrases and a direct
object (reduced the same way) are kept. A prompt it cannot parse comes back unchanged; a case's
`train_prompt` always overrides it.
"""

from __future__ import annotations

import re

DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", "some", "several", "many", "few", "one", "two",
               "three", "four", "five", "six", "seven", "eight", "nine", "ten", "his", "her", "their", "its", "my",
               "our", "your", "each", "every", "both", "no"}
AUXILIARIES = {"is", "are", "was", "were", "be", "been", "keeps", "keep"}
PREPOSITIONS = {"in", "on", "at", "under", "over", "above", "below", "near", "by", "with", "beside", "behind",
                "through", "across", "along", "around", "into", "onto", "from", "inside", "outside", "among",
                "between", "during", "against", "beneath", "within", "without", "wearing", "while", "and", "who",
                "that", "which", "of", "to", "towards", "toward", "for", "after", "before", "past", "amid"}
NON_OBJECTS = {"underwater", "outdoors", "indoors", "outside", "inside", "together", "alone", "fast", "here",
               "there", "today", "now", "again", "home", "downstairs", "upstairs", "nearby", "everywhere", "slow"}
ING_NOUNS = {"building", "ceiling", "evening", "morning", "painting", "clothing", "king", "ring", "wing", "string",
             "thing", "spring", "ping", "sibling", "pudding", "wedding", "awning", "darling", "duckling"}
MOTION_VERBS = {"walk", "run", "fly", "swim", "move", "fall", "jump", "roll", "spin", "rotate", "dance", "ride",
                "drive", "slide", "bounce", "grow", "shrink", "turn", "float", "drift", "rise", "climb", "crawl",
                "gallop", "skate", "ski", "snowboard", "surf", "sail", "race", "roar", "wave", "shake", "swing",
                "orbit", "glide", "hop", "march", "stroll", "sprint", "dive", "play", "eat", "sing", "flow", "zoom",
                "travel", "flap", "wander", "pass", "cross", "chase", "pour", "melt", "burn", "explode", "blow",
                "twist", "sway", "wiggle", "zigzag", "descend", "ascend", "leap", "kick", "throw", "push", "pull"}
# multi-word direction phrases first, longest match wins
DIRECTIONS = [tuple(p.split()) for p in sorted([
    "to the left", "to the right", "towards the camera", "toward the camera", "away from the camera",
    "towards the viewer", "toward the viewer", "in a circle", "in circles", "in a zigzag", "in a zig-zag",
    "back and forth", "up and down", "left and right", "side to side", "from side to side", "from left to right",
    "from right to left", "from top to bottom", "from bottom to top", "up", "down", "left", "right", "forward",
    "forwards", "backward", "backwards", "away", "around", "clockwise", "counterclockwise", "anticlockwise",
    "upward", "upwards", "downward", "downwards", "sideways", "diagonally", "back", "in", "out", "off", "over",
    "to the top", "to the bottom", "to the top left", "to the top right", "to the bottom left",
    "to the bottom right", "to the upper left", "to the upper right", "to the lower left", "to the lower right",
], key=lambda p: -len(p.split()))]
PLACE_WORDS = {"in", "over"}  # alone a direction ("flying in"); followed by more words a place ("in the ocean")


def _is_verb_form(word: str) -> bool:
    w = word.lower()
    if w.endswith("ing") and len(w) > 4 and w not in ING_NOUNS:
        return True
    for stem in MOTION_VERBS:
        forms = {stem, stem + "s", stem + "es"}
        if stem.endswith("y"):
            forms.add(stem[:-1] + "ies")
        if w in forms:
            return True
    return False


def _reduce_np(tokens: list[str]) -> list[str]:
    """Determiners/numbers and the head noun; 'a group of white birds' → 'a group of birds'."""
    if not tokens:
        return tokens
    if "of" in [t.lower() for t in tokens]:
        i = [t.lower() for t in tokens].index("of")
        return _reduce_np(tokens[:i]) + ["of"] + _reduce_np(tokens[i + 1:])
    dets = []
    for t in tokens:
        if t.lower() in DETERMINERS or t.isdigit():
            dets.append(t)
        else:
            break
    head = tokens[-1] if tokens[-1].lower() not in DETERMINERS else None
    return dets + ([head] if head else [])


def _match_direction(tokens: list[str], i: int) -> int:
    """Length of the direction phrase starting at tokens[i] (0 if none)."""
    low = [t.lower() for t in tokens]
    for phrase in DIRECTIONS:
        if tuple(low[i:i + len(phrase)]) == phrase:
            if len(phrase) == 1 and phrase[0] in PLACE_WORDS and i + 1 < len(low) and low[i + 1] not in (",", "."):
                return 0
            return len(phrase)
    return 0


def _starts_object(word: str) -> bool:
    """A direct object follows the verb: a determiner or number, or a bare noun (not a preposition, place or
    manner adverb)."""
    return word in DETERMINERS or word.isdigit() or (
        word.isalpha() and word not in PREPOSITIONS and word not in NON_OBJECTS and not word.endswith("ly"))


def appearance_invariant(prompt: str) -> str:
    text = prompt.strip()
    period = text.endswith(".")
    tokens = re.findall(r"[A-Za-z0-9][A-Za-z0-9'\-]*|[,;:.!?]", text.rstrip(".").strip())
    low = [t.lower() for t in tokens]
    verb = next((i for i in range(1, len(tokens) - 1) if low[i] in AUXILIARIES and _is_verb_form(tokens[i + 1])), None)
    if verb is not None:
        verb_end = verb + 2
    else:
        verb = next((i for i in range(1, len(tokens)) if _is_verb_form(tokens[i])), None)
        if verb is None:
            return prompt
        verb_end = verb + 1
    subject = tokens[:verb]
    for j, t in enumerate(subject):
        if t.lower() in PREPOSITIONS - {"of"} or t in ",;:" or (j and t.lower() in ("wearing", "with")):
            subject = subject[:j]
            break
    out = _reduce_np(subject) + tokens[verb:verb_end]
    i = verb_end
    if i < len(tokens) and not _match_direction(tokens, i) and _starts_object(low[i]):
        j = i
        while j < len(tokens) and low[j] not in PREPOSITIONS and tokens[j] not in ",;:!?" and \
                not _match_direction(tokens, j) and low[j] not in NON_OBJECTS:
            j += 1
        obj = _reduce_np(tokens[i:j])
        if obj and obj[-1].lower() not in DETERMINERS:
            out += obj
        i = j
    while i < len(tokens) and (n := _match_direction(tokens, i)):
        out += tokens[i:i + n]
        i += n
    result = " ".join(out)
    if text[:1].isupper():
        result = result[:1].upper() + result[1:]
    return result + ("." if period else "")
