"""Reply post-processing: what the model wrote, made fit to post as the character.

Models often echo the script format (``Orla:「Aye.」``), run on into another speaker's line, or
ramble. :func:`clean_reply` keeps the character's own words only and bounds the length at a
sentence end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
