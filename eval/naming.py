"""Video file names: one file per distinct prompt, always, and still readable.

A video of a prompt is named `<stem>__s<seed>.mp4`. The stem is the prompt's slug (lower case, runs of other
characters replaced by `-`, at most 80 characters) when the slug gives the prompt back exactly (lower-case
words of letters and digits, one space apart); otherwise the slug followed by `-` and the first 8 hex digits
of the prompt's SHA-256, since the slug alone could be another prompt's ("A red circle!" and "a red circle",
two prompts in a script without Latin letters, two long prompts with one beginning).

Folders written before the hash existed name every video by its slug alone. Such a name is still taken for a
prompt where no other prompt of the same case has the same slug, so that old run folders resume and old
precomputed folders read; where two do, the file could be either's and is refused.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from eval.errors import UserError

MAX_SLUG = 80
HASH_DIGITS = 8


def slugify(text: str, max_len: int = MAX_SLUG) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "x"


def prompt_stem(prompt: str) -> str:
    """The stem of a prompt's video files: its slug, with a short hash of the exact prompt where the slug is not
    faithful (see the module's docstring)."""
    slug = slugify(prompt)
    if slug.replace("-", " ") == prompt:
        return slug
    return f"{slug}-{hashlib.sha256(prompt.encode('utf-8')).hexdigest()[:HASH_DIGITS]}"


def video_name(prompt: str, seed: int) -> str:
    return f"{prompt_stem(prompt)}__s{seed}.mp4"


def legacy_name(prompt: str, seed: int, prompts) -> str | None:
    """The slug-only name an older folder used for this prompt, where it differs from today's and no other of
    the case's `prompts` shares the slug (so the file can only be this prompt's); else None."""
    slug = slugify(prompt)
    if slug == prompt_stem(prompt) or any(slugify(p) == slug for p in prompts if p != prompt):
        return None
    return f"{slug}__s{seed}.mp4"


def find_made_elsewhere(folder: Path, prompt: str, seed: int, prompts) -> Path:
    """A video made outside `eval.run` (or by it) for (prompt, seed) in one case's folder, `prompts` being the
    case's target prompts: <stem>__s<seed>.mp4, or <stem>.mp4 when a system made one video per prompt, or the
    same with the slug alone (older folders) where that names no other prompt's video. A UserError names the
    file expected, or the two prompts whose videos the folder's names cannot tell apart."""
    stem, slug = prompt_stem(prompt), slugify(prompt)
    for name in (f"{stem}__s{seed}.mp4", f"{stem}.mp4"):
        if (folder / name).is_file():
            return folder / name
    if slug != stem:
        for name in (f"{slug}__s{seed}.mp4", f"{slug}.mp4"):
            if not (folder / name).is_file():
                continue
            other = next((p for p in prompts if p != prompt and slugify(p) == slug), None)
            if other is not None:
                raise UserError(f"{folder / name}: the file names cannot tell the prompts {prompt!r} and {other!r} "
                                f"apart; name each prompt's video <stem>__s<seed>.mp4 as eval.run does "
                                f"({stem}__s{seed}.mp4 for the first, {video_name(other, seed)} for the second)")
            return folder / name
    raise UserError(f"{folder / f'{stem}__s{seed}.mp4'}: no such video (nor {stem}.mp4) for prompt {prompt!r}, "
                    f"seed {seed}")
