"""Lorebook entries (SillyTavern's ``character_book``): knowledge that enters the prompt on cue.

An entry is inserted when one of its keys appears in the recent conversation (the new message and
the last few turns), or always when it is ``constant``. Entries go in by ``insertion_order`` while
they fit the ``[prompt] lore_tokens`` budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from bot.engine.packs import LoreEntry


@lru_cache(maxsize=4096)
def _key_pattern(key: str, case_sensitive: bool) -> re.Pattern[str]:
    """Latin keys match whole words ("cat" not in "catalogue"); Chinese keys match anywhere."""
    escaped = re.escape(key.strip())
    if key.strip().isascii():
        escaped = rf"(?<!\w){escaped}(?!\w)"
    return re.compile(escaped, 0 if case_sensitive else re.IGNORECASE)


def is_triggered(entry: LoreEntry, text: str) -> bool:
    if entry.constant:
        return True
    return any(key.strip() and _key_pattern(key, entry.case_sensitive).search(text) for key in entry.keys)


def triggered(entries: Sequence[LoreEntry], texts: Sequence[str]) -> list[LoreEntry]:
    """The entries ``texts`` call for, in insertion order (ties keep the book's order)."""
    joined = "\n".join(texts)
    hits = [entry for entry in entries if entry.enabled and is_triggered(entry, joined)]
    return sorted(hits, key=lambda entry: entry.insertion_order)
