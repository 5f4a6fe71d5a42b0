"""Lorebook entries (SillyTavern's ``character_book``): knowledge that enters the prompt on cue.

An entry is inserted when one of its keys appears in the recent conversation (the new message and
the last few turns), or always when it is ``constant``. Entries go in by ``insertion_order`` while
they fit the ``[prompt] lore_tokens`` budget. :func:`matches` also says which key called each entry
(the reply's trace shows it, :mod:`bot.traces`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.engine.pack_schema import LoreEntry


@lru_cache(maxsize=4096)
def _key_pattern(key: str, case_sensitive: bool) -> re.Pattern[str]:
    """Latin keys match whole words ("cat" not in "catalogue"); Chinese keys match anywhere."""
    escaped = re.escape(key.strip())
    if key.strip().isascii():
        escaped = rf"(?<!\w){escaped}(?!\w)"
    return re.compile(escaped, 0 if case_sensitive else re.IGNORECASE)


CONSTANT = "constant"
"""What :attr:`LoreMatch.key` says for an entry that is always inserted."""


@dataclass(slots=True, frozen=True)
class LoreMatch:
    """An entry the conversation called for, and the key that called it (:data:`CONSTANT` for a
    ``constant`` entry)."""

    entry: LoreEntry
    key: str


def matching_key(entry: LoreEntry, text: str) -> str | None:
    """The first of ``entry``'s keys found in ``text`` (:data:`CONSTANT` for a constant entry), or
    ``None``."""
    if entry.constant:
        return CONSTANT
    for key in entry.keys:
        if key.strip() and _key_pattern(key, entry.case_sensitive).search(text):
            return key
    return None


def is_triggered(entry: LoreEntry, text: str) -> bool:
    return matching_key(entry, text) is not None


def matches(entries: Sequence[LoreEntry], texts: Sequence[str]) -> list[LoreMatch]:
    """The entries ``texts`` call for with the key that called each, in insertion order (ties keep
    the book's order)."""
    joined = "\n".join(texts)
    found = [
        LoreMatch(entry, key)
        for entry in entries
        if entry.enabled and (key := matching_key(entry, joined)) is not None
    ]
    return sorted(found, key=lambda match: match.entry.insertion_order)


def triggered(entries: Sequence[LoreEntry], texts: Sequence[str]) -> list[LoreEntry]:
    """The entries ``texts`` call for, in insertion order (ties keep the book's order)."""
    return [match.entry for match in matches(entries, texts)]
