"""What must not reach training data: links, e-mail addresses, phone numbers, QQ and WeChat ids.

Each is replaced by a marker (``[link]``, ``[email]``, ``[phone]``, ``[QQ]``, ``[WeChat]``,
``[number]``) so a trained model learns that something was said there without learning what. Digits
are matched without ``\\b``: in Chinese text a number sits between word characters (``电话13812345678``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_NOT_DIGIT_BEFORE = r"(?<![\d])"
_NOT_DIGIT_AFTER = r"(?![\d])"

PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "link",
        re.compile(r"(?:https?://|www\.)[^\s<>\"'「」『』（）()，。！？]+(?<![.,;:!?])", re.IGNORECASE),
        "[link]",
    ),
    ("email", re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[email]"),
    (
        "wechat",
        re.compile(
            r"wxid_[A-Za-z0-9_-]{4,}"
            r"|(?<![A-Za-z])(?P<label>(?:微信|vx|v信|wx|wechat|weixin)\s*(?:号|id)?\s*[:：是为]?\s*)[A-Za-z][-_A-Za-z0-9]{5,19}",
            re.IGNORECASE,
        ),
        r"\g<label>[WeChat]",
    ),
    (
        "qq",
        re.compile(
            r"(?<![A-Za-z])(?P<label>(?:qq|扣扣|企鹅)\s*(?:号码|号|群)?\s*[:：是为]?\s*)"
            + _NOT_DIGIT_BEFORE
            + r"\d{5,11}"
            + _NOT_DIGIT_AFTER,
            re.IGNORECASE,
        ),
        r"\g<label>[QQ]",
    ),
    (
        "phone",
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"(?:(?:\+|00)\d{1,3}[\s-]?)?(?:1[3-9]\d{9}|\d{3,4}-\d{7,8}|\(\d{2,4}\)\s?\d{3,4}[\s-]?\d{4}"
            r"|\d{3}[\s.-]\d{3}[\s.-]\d{4})" + _NOT_DIGIT_AFTER
        ),
        "[phone]",
    ),
    ("phone", re.compile(r"\+\d[\d\s-]{7,}\d" + _NOT_DIGIT_AFTER), "[phone]"),
    ("number", re.compile(_NOT_DIGIT_BEFORE + r"\d{7,}" + _NOT_DIGIT_AFTER), "[number]"),
)
"""Kind, pattern, marker; in this order (a link may hold an address, a labelled id a bare number)."""


_MAYBE = re.compile(r"\d|@|://|www\.|wx|vx|v信|微信|wechat|weixin", re.IGNORECASE)
"""Found in every text any pattern could match: most lines have none, and skip the seven patterns."""


@dataclass(slots=True)
class Scrubber:
    """Replaces every match of :data:`PATTERNS` and counts what it replaced, by kind."""

    found: Counter[str] = field(default_factory=Counter)

    def __call__(self, text: str) -> str:
        if not _MAYBE.search(text):
            return text
        for kind, pattern, marker in PATTERNS:
            text, count = pattern.subn(marker, text)
            if count:
                self.found[kind] += count
        return text
