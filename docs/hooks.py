r"""MkDocs hook: a pipe escaped inside a code span of a table row (`on\|off`) reads as a plain pipe.

GitHub's tables need the escape even inside code spans; Python-Markdown keeps a code span whole
and would show the backslash. The pages stay written for GitHub, and the site shows `on|off`.
"""

from __future__ import annotations

import re

_CODE_SPAN = re.compile(r"`[^`\n]*`")


def on_page_markdown(markdown: str, **_: object) -> str:
    r"""The page's Markdown with ``\|`` unescaped inside the code spans of table rows."""
    lines = markdown.split("\n")
    for index, line in enumerate(lines):
        if line.lstrip().startswith("|"):
            lines[index] = _CODE_SPAN.sub(lambda span: span.group(0).replace("\\|", "|"), line)
    return "\n".join(lines)
