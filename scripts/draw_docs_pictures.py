"""Draw the pictures of the documentation site into ``docs/img/``.

* ``group-chat.png``: a group chat in which two shipped characters, Orla Finch and 苏小满, answer
  the members who call them, one reply carrying a screenshot from its pack;
* ``discord-webhooks.png``: the same characters in a Discord channel, each posting through the
  channel's webhook under its own name and avatar (Discord's dark theme);
* ``message-path.svg``: the stages one message goes through, from the platform's event to the send
  queue (the path of ``bot/router.py`` and ``bot/flow/``).

The avatars and the screenshot come from the packs under ``characters/``. Chinese needs a CJK font
(Noto Sans CJK, WenQuanYi, Source Han Sans …, e.g. ``apt-get install fonts-noto-cjk``); without one
the script warns and draws with the best font it finds, Chinese then showing as boxes.

Usage::

    python scripts/draw_docs_pictures.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from draw_screenshots import FONT_DIRS  # the same folders: scripts/ is on sys.path when run
from PIL import Image, ImageDraw, ImageFont

REPO_ROOT = Path(__file__).resolve().parent.parent
CHARACTERS = REPO_ROOT / "characters"
SCALE = 2
"""Pixels per layout unit: the PNGs are drawn at twice their layout size, sharp on dense screens."""

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Colour = tuple[int, int, int]

CJK_FONTS = {
    False: (
        "NotoSansCJK-Regular.tt[cf]",
        "NotoSansSC-Regular.[ot]tf",
        "wqy-microhei.tt[cf]",
        "wqy-zenhei.tt[cf]",
        "SourceHanSans*-Regular.[ot]t[cf]",
        "DroidSansFallback*.ttf",
    ),
    True: ("NotoSansCJK-Bold.tt[cf]", "NotoSansSC-Bold.[ot]tf", "SourceHanSans*-Bold.[ot]t[cf]"),
}
LATIN_FONTS = {
    False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"),
    True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf"),
}
SYMBOL_FONTS = ("DejaVuSans.ttf",)
"""For the few arrows CJK fonts lack (↪)."""


def _find(patterns: Sequence[str]) -> Path | None:
    for pattern in patterns:
        for folder in FONT_DIRS:
            if folder.is_dir():
                found = sorted(folder.glob(f"**/{pattern}"))
                if found:
                    return found[0]
    return None


def _open(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """The font at ``path``; in a collection, its Simplified Chinese face when it has one."""
    if path.suffix.lower() != ".ttc":
        return ImageFont.truetype(str(path), size)
    for index in range(10):
        try:
            face = ImageFont.truetype(str(path), size, index=index)
        except OSError:
            break
        if " SC" in " ".join(str(part) for part in face.getname()):
            return face
    return ImageFont.truetype(str(path), size)


@cache
def font(size: float, *, bold: bool = False) -> Font:
    """A font of ``size`` layout units that can write Chinese, or the best there is."""
    pixels = round(size * SCALE)
    path = _find(CJK_FONTS[bold]) or _find(CJK_FONTS[False])
    if path is None:
        path = _find(LATIN_FONTS[bold])
        _warn_once("no CJK font found (install fonts-noto-cjk): Chinese text will show as boxes")
    if path is None:
        return ImageFont.load_default(pixels)
    return _open(path, pixels)


@cache
def symbol_font(size: float) -> Font:
    path = _find(SYMBOL_FONTS)
    return _open(path, round(size * SCALE)) if path else font(size)


@cache
def _warn_once(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# --- text --------------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|[^\s\u2e80-\u9fff\uff00-\uffef]+\s*|\s+"
)
_NO_LINE_START = set("，。、；：！？）」』”’,.;:!?)")


def wrap(text: str, face: Font, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` layout units: Latin broken between words, Chinese
    between characters (never before a closing mark)."""
    limit = width * SCALE
    lines: list[str] = []
    line = ""
    for token in _TOKENS.findall(text):
        candidate = line + token
        if line and face.getlength(candidate.rstrip()) > limit and token[0] not in _NO_LINE_START:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line = candidate
    if line.strip():
        lines.append(line.rstrip())
    return lines


def ellipsized(text: str, face: Font, width: float) -> str:
    """``text`` cut with "…" to fit ``width`` layout units on one line."""
    if face.getlength(text) <= width * SCALE:
        return text
    while text and face.getlength(text + "…") > width * SCALE:
        text = text[:-1]
    return text.rstrip() + "…"


def text_width(text: str, face: Font) -> float:
    """The width of ``text`` in layout units."""
    return face.getlength(text) / SCALE


# --- drawing in layout units -------------------------------------------------------------------


@dataclass(slots=True)
class Canvas:
    """An RGB picture drawn in layout units (``SCALE`` pixels each)."""

    width: float
    height: float
    background: Colour
    image: Image.Image = field(init=False)
    draw: ImageDraw.ImageDraw = field(init=False)

    def __post_init__(self) -> None:
        self.image = Image.new(
            "RGB", (round(self.width * SCALE), round(self.height * SCALE)), self.background
        )
        self.draw = ImageDraw.Draw(self.image)

    def box(self, x: float, y: float, w: float, h: float, fill: Colour, radius: float = 0) -> None:
        corners = [round(x * SCALE), round(y * SCALE), round((x + w) * SCALE) - 1, round((y + h) * SCALE) - 1]
        self.draw.rounded_rectangle(corners, radius=round(radius * SCALE), fill=fill)

    def text(self, x: float, y: float, text: str, face: Font, fill: Colour) -> None:
        """``text`` with its line box's top-left corner at (x, y)."""
        self.draw.text((x * SCALE, y * SCALE), text, font=face, fill=fill)

    def paste_round(
        self, picture: Image.Image, x: float, y: float, w: float, h: float, radius: float
    ) -> None:
        """``picture`` scaled to w×h with rounded corners (a circle when radius is half the side)."""
        size = (round(w * SCALE), round(h * SCALE))
        scaled = picture.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        # NOTE: the mask is drawn 4× larger and shrunk, so the round edge is smooth.
        big = Image.new("L", (size[0] * 4, size[1] * 4), 0)
        ImageDraw.Draw(big).rounded_rectangle(
            [0, 0, big.width - 1, big.height - 1], radius=round(radius * SCALE * 4), fill=255
        )
        mask = big.resize(size, Image.Resampling.LANCZOS)
        self.image.paste(scaled, (round(x * SCALE), round(y * SCALE)), mask)

    def initials_avatar(self, x: float, y: float, side: float, letter: str, colour: Colour) -> None:
        """A round avatar: a letter on a colour, as chat apps give members without a picture."""
        disc = Image.new("RGB", (64, 64), colour)
        self.paste_round(disc, x, y, side, side, side / 2)
        face = font(side * 0.42, bold=True)
        left, top, right, bottom = face.getbbox(letter)
        cx = x * SCALE + side * SCALE / 2 - (left + right) / 2
        cy = y * SCALE + side * SCALE / 2 - (top + bottom) / 2
        self.draw.text((cx, cy), letter, font=face, fill=(255, 255, 255))

    def save(self, path: Path) -> None:
        self.image.save(path, optimize=True)


@dataclass(frozen=True, slots=True)
class Character:
    """What the pictures use of a shipped pack: its name, avatar and screenshots."""

    name: str
    folder: Path

    @property
    def avatar(self) -> Image.Image:
        return Image.open(self.folder / "images" / "avatar.png")

    def screenshot(self, name: str) -> Image.Image:
        return Image.open(self.folder / "images" / name)


ORLA = Character("Orla Finch", CHARACTERS / "orla")
XIAOMAN = Character("苏小满", CHARACTERS / "xiaoman")


# --- the group chat ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    letter: str
    colour: Colour


@dataclass(frozen=True, slots=True)
class Said:
    """One message of the transcript: by a member, or by a character quoting what it answers."""

    text: str
    member: Member | None = None
    character: Character | None = None
    quote: str = ""
    screenshot: str = ""


PIP = Member("Pip", "P", (86, 156, 214))
AJIE = Member("阿杰", "杰", (230, 126, 64))
INES = Member("Ines Varga", "I", (120, 170, 90))
ME = PIP
"""The member whose phone this is: their messages sit on the right, in blue."""

GROUP_CHAT = (
    Said("@Orla Finch is the lamp lit? The ferry's late again.", member=PIP),
    Said(
        "Lit since four. Northway couldn't keep time if I rowed out and towed them in myself.",
        character=ORLA,
        quote="Pip: @Orla Finch is the lamp lit? The ferry's late again.",
    ),
    Said("小满，来壶茶！加班到现在，头都大了。", member=AJIE),
    Said(
        "又加班？先坐下，三十秒就好。头泡凤凰单丛我给你晾凉了，喝完再说。茶催不得，人也一样。",
        character=XIAOMAN,
        quote="阿杰: 小满，来壶茶！加班到现在，头都大了。",
        screenshot="0001.jpg",
    ),
    Said("Orla, 小满 says her tea beats yours.", member=INES),
    Said(
        "Her tea, maybe. My stew, never. You can tell her I said so.",
        character=ORLA,
        quote="Ines Varga: Orla, 小满 says her tea beats yours.",
    ),
)

CHAT_WIDTH = 720
CHAT_BG = (242, 243, 245)
BUBBLE = (255, 255, 255)
MY_BUBBLE = (0, 137, 255)
INK = (25, 25, 25)
GREY = (140, 143, 150)
QUOTE_BG = (241, 242, 244)
BADGE = (88, 101, 242)


def _chat_message_height(said: Said, body: Font, max_text: float) -> float:
    lines = wrap(said.text, body, max_text)
    height = 20 + 22 * len(lines)
    if said.quote:
        height += 30
    if said.screenshot:
        height += 180 + 10
    name_row = 0 if said.member is ME else 20
    return name_row + height + 16


def draw_group_chat(out: Path) -> None:
    """A phone-sized group chat: three members, two characters answering, one screenshot."""
    body, small, name_face = font(15), font(12), font(12.5)
    avatar, margin, gap = 40, 16, 10
    max_bubble = 440
    max_text = max_bubble - 24
    header = 56
    height = header + 44 + sum(_chat_message_height(said, body, max_text) for said in GROUP_CHAT) + 12
    canvas = Canvas(CHAT_WIDTH, height, CHAT_BG)

    canvas.box(0, 0, CHAT_WIDTH, header, (255, 255, 255))
    canvas.box(0, header - 1, CHAT_WIDTH, 1, (226, 228, 232))
    title = "Skerrow 茶话会 (5)"
    canvas.text(
        (CHAT_WIDTH - text_width(title, font(17, bold=True))) / 2, 15, title, font(17, bold=True), INK
    )
    canvas.text(margin, 16, "‹", font(22), GREY)
    stamp = "21:14"
    canvas.text((CHAT_WIDTH - text_width(stamp, small)) / 2, header + 14, stamp, small, GREY)

    y = header + 44
    for said in GROUP_CHAT:
        lines = wrap(said.text, body, max_text)
        text_w = max(text_width(line, body) for line in lines)
        if said.quote:
            text_w = max(text_w, min(text_width(said.quote, small) + 22, max_text))
        if said.screenshot:
            text_w = max(text_w, 320)
        bubble_w = text_w + 24
        bubble_h = 20 + 22 * len(lines) + (30 if said.quote else 0) + (190 if said.screenshot else 0)

        if said.member is ME:
            bubble_x = CHAT_WIDTH - margin - avatar - gap - bubble_w
            canvas.initials_avatar(CHAT_WIDTH - margin - avatar, y, avatar, ME.letter, ME.colour)
            canvas.box(bubble_x, y, bubble_w, bubble_h, MY_BUBBLE, 10)
            ink = (255, 255, 255)
        else:
            bubble_x = margin + avatar + gap
            if said.character is not None:
                canvas.paste_round(said.character.avatar, margin, y, avatar, avatar, avatar / 2)
                name = said.character.name
            else:
                assert said.member is not None
                canvas.initials_avatar(margin, y, avatar, said.member.letter, said.member.colour)
                name = said.member.name
            canvas.text(bubble_x + 2, y - 2, name, name_face, GREY)
            if said.character is not None:
                badge_x = bubble_x + 2 + text_width(name, name_face) + 6
                canvas.box(badge_x, y + 1, 26, 15, BADGE, 4)
                canvas.text(badge_x + 4.5, y + 0.5, "bot", font(10, bold=True), (255, 255, 255))
            y += 20
            canvas.box(bubble_x, y, bubble_w, bubble_h, BUBBLE, 10)
            ink = INK

        inner_y = y + 10
        if said.quote:
            canvas.box(bubble_x + 10, inner_y, bubble_w - 20, 24, QUOTE_BG, 4)
            canvas.box(bubble_x + 10, inner_y, 3, 24, (200, 203, 209), 1.5)
            canvas.text(bubble_x + 19, inner_y + 3, ellipsized(said.quote, small, bubble_w - 36), small, GREY)
            inner_y += 30
        for line in lines:
            canvas.text(bubble_x + 12, inner_y, line, body, ink)
            inner_y += 22
        if said.screenshot:
            assert said.character is not None
            canvas.paste_round(
                said.character.screenshot(said.screenshot), bubble_x + 12, inner_y + 6, 320, 180, 6
            )
        y += bubble_h + 16
    canvas.save(out)


# --- Discord -----------------------------------------------------------------------------------

DISCORD_BG = (49, 51, 56)
DISCORD_TEXT = (219, 222, 225)
DISCORD_MUTED = (148, 155, 164)
DISCORD_NAME = (242, 243, 245)
DISCORD_LINK = (0, 168, 252)
DISCORD_MENTION = (60, 66, 112)
DISCORD_MENTION_TEXT = (201, 205, 251)
DISCORD_BLURPLE = (88, 101, 242)


@dataclass(frozen=True, slots=True)
class Post:
    """One Discord message: a member's, or a character's through the webhook, answering ``to``."""

    text: str
    time: str
    member: Member | None = None
    character: Character | None = None
    to: str = ""


TAM = Member("Tam Rudd", "T", (240, 178, 50))
MEI = Member("mei", "M", (35, 165, 90))

DISCORD_CHANNEL = (
    Post("Orla, storm's coming in tonight. You'll keep the light?", "21:02", member=TAM),
    Post(
        "Always do. Tie the boat twice, Tam, and don't argue with me about it this time.",
        "21:02",
        character=ORLA,
        to="Tam Rudd",
    ),
    Post("小满，今晚有什么好茶？外面冷死了。", "21:05", member=MEI),
    Post(
        "冷就别站门口啦，进来坐。炭炉上温着一壶老白茶，枣香正好，给你留着呢。",
        "21:05",
        character=XIAOMAN,
        to="mei",
    ),
)


def draw_discord(out: Path) -> None:
    """A Discord channel in the dark theme: members call the characters, each answers as itself."""
    width, margin, avatar, left = 720, 16, 40, 72
    body, name_face, stamp_face, sub = font(15), font(15, bold=True), font(11.5), font(12.5)
    max_text = width - left - margin
    header, composer = 48, 68

    heights = []
    for post in DISCORD_CHANNEL:
        h = 24 + 22 * len(wrap(post.text, body, max_text)) + (20 if post.to else 0)
        heights.append(max(h, avatar + 4) + 18)
    height = header + 20 + sum(heights) + composer
    canvas = Canvas(width, height, DISCORD_BG)

    canvas.box(0, header - 1, width, 1, (31, 32, 35))
    canvas.text(margin, 9, "#", font(22), DISCORD_MUTED)
    canvas.text(margin + 22, 13, "the-harbour", font(16, bold=True), DISCORD_NAME)
    topic_x = margin + 22 + text_width("the-harbour", font(16, bold=True)) + 14
    canvas.box(topic_x, 14, 1, 20, (78, 80, 88))
    canvas.text(topic_x + 12, 15, "Skerrow Isle and 槐荫巷, one channel", font(13), DISCORD_MUTED)

    y = header + 20
    for post, block in zip(DISCORD_CHANNEL, heights, strict=True):
        if post.character is not None:
            canvas.paste_round(post.character.avatar, margin, y, avatar, avatar, avatar / 2)
            name, colour = post.character.name, DISCORD_NAME
        else:
            assert post.member is not None
            canvas.initials_avatar(margin, y, avatar, post.member.letter, post.member.colour)
            name, colour = post.member.name, post.member.colour
        canvas.text(left, y - 1, name, name_face, colour)
        x = left + text_width(name, name_face) + 6
        if post.character is not None:
            canvas.box(x, y + 2, 30, 15, DISCORD_BLURPLE, 3)
            canvas.text(x + 4, y + 1.5, "APP", font(10, bold=True), (255, 255, 255))
            x += 36
        canvas.text(x + 2, y + 2.5, f"Today at {post.time}", stamp_face, DISCORD_MUTED)
        line_y = y + 24
        if post.to:
            # NOTE: a webhook cannot reply natively: the bot opens with "-# ↪ @member · link" (subtext).
            canvas.text(left, line_y + 0.5, "↪", symbol_font(12.5), DISCORD_MUTED)
            mention = f"@{post.to}"
            mention_x = left + 16
            canvas.box(mention_x - 1, line_y, text_width(mention, sub) + 4, 18, DISCORD_MENTION, 3)
            canvas.text(mention_x + 1, line_y - 1, mention, sub, DISCORD_MENTION_TEXT)
            dot_x = mention_x + text_width(mention, sub) + 8
            canvas.text(dot_x, line_y + 2, "·", symbol_font(12.5), DISCORD_MUTED)
            canvas.text(dot_x + 10, line_y - 1, "https://discord.com/channels/…", sub, DISCORD_LINK)
            line_y += 20
        for line in wrap(post.text, body, max_text):
            canvas.text(left, line_y, line, body, DISCORD_TEXT)
            line_y += 22
        y += block

    canvas.box(margin, height - composer + 10, width - 2 * margin, 44, (56, 58, 64), 8)
    canvas.text(margin + 44, height - composer + 21, "Message #the-harbour", font(15), (109, 111, 120))
    canvas.box(margin + 12, height - composer + 22, 20, 20, (181, 186, 193), 10)
    canvas.text(margin + 17.5, height - composer + 18.5, "+", font(16, bold=True), (56, 58, 64))
    canvas.save(out)


# --- the message path --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    title: str
    where: str
    items: tuple[str, ...]
    colour: str


STAGES = (
    Stage(
        "receive",
        "flow/locks.py",
        ("one chat at a time,", "in order", "chats run", "concurrently"),
        "#5c6bc0",
    ),
    Stage(
        "classify",
        "flow/classify.py",
        ("a command", "a command's next step", "a call to characters", "room talk"),
        "#5c6bc0",
    ),
    Stage(
        "gather",
        "flow/gather.py",
        (
            "one unit of work:",
            "claim the message",
            "store it",
            "context: history,",
            "summary, recall",
            "governor: limits,",
            "budgets",
        ),
        "#00897b",
    ),
    Stage(
        "answer",
        "flow/answer.py, engine/",
        ("retrieve scenes", "build the prompt", "ask the model", "reply check", "screenshot"),
        "#00897b",
    ),
    Stage(
        "record",
        "flow/record.py",
        ("one write:", "the character's line", "the reply in the ledger", "tokens used"),
        "#00897b",
    ),
    Stage(
        "send queue", "bot/sending.py", ("paced per account", "merged, retried", "marked posted"), "#ef6c00"
    ),
)


def message_path_svg() -> str:
    """The message path as an SVG drawing with its own background, legible on light and dark pages."""
    box_w, box_h, gap, left, top = 168, 196, 28, 24, 150
    width = left * 2 + len(STAGES) * box_w + (len(STAGES) - 1) * gap
    height = 520
    mono = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, sans-serif" '
        'role="img" aria-labelledby="title">',
        '<title id="title">The path of one message: receive, classify, gather, answer, record, '
        "send queue</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#546e7a"/></marker>',
        "</defs>",
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="14" fill="#fafafa" '
        'stroke="#cfd8dc"/>',
    ]

    def arrow(*points: tuple[float, float], dashed: bool = False) -> None:
        """A line through ``points`` with an arrowhead at the last one."""
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        route = " L ".join(f"{x:g} {y:g}" for x, y in points)
        parts.append(
            f'<path d="M {route}" stroke="#546e7a" stroke-width="1.6" fill="none"{dash} '
            'stroke-linejoin="round" marker-end="url(#arrow)"/>'
        )

    def label(
        x: float,
        y: float,
        text: str,
        size: float = 12,
        colour: str = "#37474f",
        anchor: str = "middle",
        weight: str = "normal",
        family: str = "",
    ) -> None:
        face = f' font-family="{family}"' if family else ""
        parts.append(
            f'<text x="{x:g}" y="{y:g}" font-size="{size}" fill="{colour}" text-anchor="{anchor}" '
            f'font-weight="{weight}"{face}>{escape(text)}</text>'
        )

    def pill(x: float, y: float, w: float, h: float, fill: str, stroke: str) -> None:
        parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="9" fill="{fill}" stroke="{stroke}"/>'
        )

    # The platforms and the adapter, above the first stage.
    first_x = left + box_w / 2
    pill(left, 24, 380, 44, "#eceff1", "#90a4ae")
    label(left + 190, 43, "QQ · WeChat (OneBot v11) · Discord · console", 12.5, weight="bold")
    label(left + 190, 60, "a platform event", 11.5, "#607d8b")
    arrow((left + 380, 46), (left + 426, 46))
    pill(left + 428, 24, 250, 44, "#eceff1", "#90a4ae")
    label(left + 553, 43, "adapter (plugins/)", 12.5, weight="bold")
    label(left + 553, 60, "event → Incoming", 11.5, "#607d8b", family=mono)
    arrow((left + 553, 68), (left + 553, 100), (first_x, 100), (first_x, top - 2))
    label(first_x + 14, 124, "bot/router.py composes the stages of bot/flow/", 12, "#607d8b", "start")

    # The stages.
    for index, stage in enumerate(STAGES):
        x = left + index * (box_w + gap)
        parts.append(
            f'<rect x="{x}" y="{top}" width="{box_w}" height="{box_h}" rx="10" fill="#ffffff" '
            f'stroke="{stage.colour}" stroke-width="2"/>'
        )
        parts.append(f'<rect x="{x}" y="{top}" width="{box_w}" height="34" rx="10" fill="{stage.colour}"/>')
        parts.append(f'<rect x="{x}" y="{top + 24}" width="{box_w}" height="10" fill="{stage.colour}"/>')
        label(x + box_w / 2, top + 23, stage.title, 15, "#ffffff", weight="bold")
        label(x + box_w / 2, top + 52, stage.where, 10.5, "#607d8b", family=mono)
        for line, item in enumerate(stage.items):
            label(x + 12, top + 76 + line * 17, item, 12, anchor="start")
        if index:
            arrow((x - gap, top + box_h / 2), (x - 2, top + box_h / 2))

    # A command's reply leaves classify for the send queue; every reply goes out through the adapter.
    bottom = top + box_h
    classify_x = left + box_w + gap + box_w / 2
    queue_left = left + 5 * (box_w + gap)
    queue_right = queue_left + box_w
    arrow((classify_x, bottom), (classify_x, bottom + 38))
    pill(classify_x - 70, bottom + 40, 140, 38, "#e8eaf6", "#5c6bc0")
    label(classify_x, bottom + 57, "commands/", 12.5, weight="bold", family=mono)
    label(classify_x, bottom + 72, "/switch, /help …", 11, "#607d8b")
    arrow(
        (classify_x + 70, bottom + 59),
        (queue_left + 36, bottom + 59),
        (queue_left + 36, bottom + 4),
        dashed=True,
    )
    label((classify_x + queue_left) / 2 + 40, bottom + 53, "a command's answer needs no model", 11, "#607d8b")
    out_w, out_y = 236, bottom + 96
    arrow((queue_right - 44, bottom), (queue_right - 44, out_y - 2))
    pill(queue_right - out_w, out_y, out_w, 44, "#eceff1", "#90a4ae")
    label(queue_right - out_w / 2, out_y + 19, "adapter → the same group,", 12.5, weight="bold")
    label(queue_right - out_w / 2, out_y + 35, "channel or private chat", 12.5, weight="bold")
    label(
        left,
        height - 20,
        "Room talk (a message that calls no character) is stored by gather and answered by no one.",
        11.5,
        "#607d8b",
        "start",
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "img", help="folder of the pictures")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    draw_group_chat(out / "group-chat.png")
    draw_discord(out / "discord-webhooks.png")
    (out / "message-path.svg").write_text(message_path_svg(), encoding="utf-8")
    for name in ("group-chat.png", "discord-webhooks.png", "message-path.svg"):
        print(f"wrote {out / name} ({(out / name).stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
