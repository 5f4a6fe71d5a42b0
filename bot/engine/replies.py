"""Reply post-processing: what the model wrote, made fit to post as the character.

Models often echo the script format (``Orla:「Aye.」``), run on into another speaker's line, or
ramble. :func:`clean_reply` keeps the character's own words only and bounds the length at a
sentence end. The character's set lines (deflection, slow down, spent) vary: :func:`fresh_line`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_SENTENCE_END = re.compile(r"[。！？!?…](?:[」』\"')\]]*)|\.(?=\s|$)")
_SPEAKER = re.compile(r"^\s*([^\s:：「」()（）\[\]][^:：「」()（）\[\]\n]{0,24}?)\s*[:：]\s*")
_BRACKETS = str.maketrans("", "", "「」『』")


def _strip_prefix(line: str, names: set[str]) -> tuple[str, bool]:
    """``line`` without a leading ``Name:`` of the character; also tells whether one was there."""
    match = _SPEAKER.match(line)
    if match and match.group(1).strip().casefold() in names:
        return line[match.end() :], True
    return line, False


def _is_other_speaker(line: str, names: set[str]) -> bool:
    match = _SPEAKER.match(line)
    if match is None:
        return False
    speaker = match.group(1).strip()
    return speaker.casefold() not in names and len(speaker.split()) <= 3


def bound_length(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``, at the last sentence end when there is one in the second half."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= max_chars // 2:
        return head[: ends[-1]].rstrip()
    return head[: max_chars - 1].rstrip() + "…"


def clean_reply(text: str, *, names: Iterable[str], max_chars: int) -> str:
    """Keep the character's words: drop ``Name:`` prefixes, stray brackets, other speakers' lines.

    ``names`` are the character's name and aliases. The reply ends where a line by another speaker
    starts (the model began writing the user's part); the first line is always kept, since
    ``Note this: ...`` reads like a speaker but is the character talking.
    """
    folded = {name.casefold() for name in names if name}
    kept: list[str] = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        line, own = _strip_prefix(line, folded)
        if not own and kept and _is_other_speaker(line, folded):
            break
        line = line.translate(_BRACKETS).strip().strip('"“”').strip()
        if line:
            kept.append(line)
    joined = "\n".join(kept)
    return bound_length(joined, max_chars)


_BREAKS = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    _SENTENCE_END,
    re.compile(r"[,，、;；:：]"),
    re.compile(r"\s"),
)


def _cut(text: str, limit: int) -> int:
    """The best place at or before ``limit`` to end a chunk of ``text`` (``len(text) > limit``)."""
    window = text[: limit + 1]
    for level, pattern in enumerate(_BREAKS):
        ends = []
        for match in pattern.finditer(window):
            if match.end() <= limit:
                ends.append(match.end())
            elif match.group().isspace():
                ends.append(match.start())
        # Paragraph, line and sentence breaks are only worth it when they keep most of the window.
        floor = limit // 2 if level < len(_BREAKS) - 1 else 1
        if ends and ends[-1] >= floor:
            return ends[-1]
    return limit


def split_message(text: str, limit: int) -> list[str]:
    """``text`` in chunks of at most ``limit`` characters, for platforms that cap a message.

    Chunks end at a paragraph, line, sentence or clause break, or else between words, whichever
    keeps the chunk longest; a word is cut only when it alone is longer than ``limit``. Chinese
    text without spaces is cut at its punctuation, then between characters.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        end = _cut(rest, limit)
        chunks.append(rest[:end].rstrip())
        rest = rest[end:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def fresh_line(lines: Sequence[str], heard: Iterable[str | None] = ()) -> str:
    """One of ``lines``, never the one the chat heard last: the line after the newest of ``heard``
    (what was said there, newest first) that is one of them, else the first; ``""`` when there are
    none. Two members deflected one after the other get two different lines."""
    if not lines:
        return ""
    for text in heard:
        if text in lines:
            return lines[(lines.index(text) + 1) % len(lines)]
    return lines[0]
