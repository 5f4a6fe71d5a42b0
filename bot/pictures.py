"""Text drawn as a picture: a long reply posted as one image (``[sending] long_reply = "image"``)
instead of a wall of messages, with a font found on the machine that has every character it needs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")


def _covers(font: Path, text: str) -> bool:
    from fontTools.ttLib import TTFont

    try:
        with TTFont(font, fontNumber=0, lazy=True) as loaded:
            cmap = loaded.getBestCmap() or {}
    except Exception:
        return False
    return all(ord(char) in cmap for char in text if not char.isspace())


def find_font(text: str, preferred: str = "", dirs: Sequence[Path] = FONT_DIRS) -> Path | None:
    """A TrueType/OpenType font that has a glyph for every character of ``text``."""
    candidates = [Path(preferred)] if preferred else []
    for folder in dirs:
        if folder.is_dir():
            candidates += sorted(
                path for path in folder.rglob("*") if path.suffix.lower() in (".ttf", ".otf", ".ttc")
            )
    return next((path for path in candidates if path.is_file() and _covers(path, text)), None)


def render_text(text: str, font_path: Path, *, width: int = 720, size: int = 28) -> bytes:
    """``text`` drawn as a PNG, wrapped to ``width`` pixels."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    margin, lines = 24, []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for char in paragraph:
            if font.getlength(line + char) > width - 2 * margin and line:
                lines.append(line)
                line = char.lstrip()
            else:
                line += char
        lines.append(line)
    height = margin * 2 + int(size * 1.5) * len(lines)
    picture = PILImage.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    for number, line in enumerate(lines):
        draw.text((margin, margin + number * int(size * 1.5)), line, fill="black", font=font)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
