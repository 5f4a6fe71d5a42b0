"""Draw the illustrative screenshots listed in character packs' ``images.jsonl``.

Every line of ``images.jsonl`` names an image path, one of the character's lines and
the scene it comes from.  For each entry this script paints a small 640x360 picture
(a lighthouse for Orla, a tea house for Xiaoman, an abstract backdrop for any other
pack), chooses details from keywords in the scene and a seed derived from the pack
name and entry index, and puts the line in a subtitle bar at the bottom.

Usage::

    python scripts/draw_screenshots.py [characters/orla characters/xiaoman ...] [--avatars-only]

Without arguments every pack under ``characters/`` that has an ``images.jsonl`` is
drawn.  Output is deterministic for a given Pillow version and set of fonts.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import tomllib
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH = 640
HEIGHT = 360
BAR_HEIGHT = 78
JPEG_QUALITY = 80
MIN_JPEG_QUALITY = 55
MAX_BYTES = 40_000
REPO_ROOT = Path(__file__).resolve().parent.parent
CHARACTERS_DIR = REPO_ROOT / "characters"

FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".fonts",
    Path.home() / ".local/share/fonts",
    Path("/System/Library/Fonts"),
    Path("/Library/Fonts"),
)
CJK_FONT_GLOBS = (
    "**/*CJK*.tt[cf]",
    "**/*CJK*.otf",
    "**/*cjk*.tt[cf]",
    "**/*wqy*.tt[cf]",
    "**/*WenQuanYi*.tt[cf]",
    "**/NotoSansSC*.[ot]tf",
    "**/NotoSerifSC*.[ot]tf",
    "**/*SourceHanSans*.[ot]t[cf]",
    "**/*DroidSansFallback*.ttf",
    "**/PingFang*.tt[cf]",
    "**/Hiragino Sans GB*.tt[cf]",
)

RGB = tuple[int, int, int]
FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont
Painter = Callable[[Image.Image, random.Random, str], None]


@dataclass(frozen=True)
class Entry:
    """One screenshot request read from ``images.jsonl``."""

    index: int
    image: str
    text: str
    scene: str


def lerp(a: RGB, b: RGB, t: float) -> RGB:
    """Blend two colours; ``t`` runs from 0 (``a``) to 1 (``b``)."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def vertical_gradient(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top: RGB, bottom: RGB
) -> None:
    """Fill ``box`` (left, top, right, bottom) with a top-to-bottom gradient."""
    left, y0, right, y1 = box
    span = max(1, y1 - y0 - 1)
    for y in range(y0, y1):
        draw.line([(left, y), (right, y)], fill=lerp(top, bottom, (y - y0) / span))


def has_any(haystack: str, words: Sequence[str]) -> bool:
    """Return whether any of ``words`` occurs in ``haystack`` (case-insensitive)."""
    lowered = haystack.lower()
    return any(word.lower() in lowered for word in words)


def overlay(image: Image.Image, paint: Callable[[ImageDraw.ImageDraw], None], blur: float = 0.0) -> None:
    """Let ``paint`` draw translucent shapes on a layer composited onto ``image``.

    A positive ``blur`` softens the layer with a Gaussian blur of that radius first.
    """
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    paint(ImageDraw.Draw(layer))
    if blur > 0:
        layer = layer.filter(ImageFilter.GaussianBlur(blur))
    image.paste(Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB"))


def draw_cat(draw: ImageDraw.ImageDraw, x: int, base: int, scale: float, fill: RGB) -> None:
    """Draw a sitting cat silhouette whose paws rest on ``base`` at horizontal ``x``."""

    def s(v: float) -> int:
        return round(v * scale)

    draw.ellipse([x - s(16), base - s(38), x + s(16), base], fill=fill)
    draw.ellipse([x - s(11), base - s(58), x + s(11), base - s(36)], fill=fill)
    draw.polygon([(x - s(10), base - s(52)), (x - s(8), base - s(66)), (x - s(2), base - s(56))], fill=fill)
    draw.polygon([(x + s(10), base - s(52)), (x + s(8), base - s(66)), (x + s(2), base - s(56))], fill=fill)
    draw.arc([x + s(6), base - s(30), x + s(36), base + s(4)], start=270, end=90, fill=fill, width=s(5))


def paint_lighthouse(image: Image.Image, rng: random.Random, context: str) -> None:
    """Paint Skerrow Light: sky, sea, cliff, tower, beam, and sometimes a ship or the cat."""
    draw = ImageDraw.Draw(image)
    if has_any(context, ("fog", "mist")):
        mood = "fog"
    elif has_any(context, ("storm", "squall", "gale", "thunder", "blizzard", "lightning")):
        mood = "storm"
    elif has_any(context, ("northern sky", "merry dancers", "aurora")):
        mood = "aurora"
    elif has_any(context, ("night", "midnight", "dark", "in the morning", "power")):
        mood = "night"
    elif has_any(context, ("dusk", "sun's low", "spring", "evening")):
        mood = "dusk"
    else:
        mood = rng.choice(("day", "dusk", "night"))

    palettes: dict[str, tuple[RGB, RGB, RGB, RGB]] = {
        "day": ((120, 170, 215), (205, 225, 238), (52, 98, 130), (22, 52, 76)),
        "dusk": ((70, 60, 120), (240, 160, 110), (60, 70, 110), (24, 30, 58)),
        "night": ((8, 14, 38), (32, 52, 92), (16, 30, 54), (6, 12, 26)),
        "aurora": ((6, 12, 30), (20, 44, 70), (12, 28, 46), (4, 10, 22)),
        "storm": ((48, 54, 64), (104, 112, 122), (44, 58, 66), (20, 28, 34)),
        "fog": ((168, 176, 182), (206, 210, 212), (120, 134, 142), (80, 92, 100)),
    }
    sky_top, sky_bottom, sea_top, sea_bottom = palettes[mood]
    horizon = rng.randint(186, 206)
    vertical_gradient(draw, (0, 0, WIDTH, horizon), sky_top, sky_bottom)
    vertical_gradient(draw, (0, horizon, WIDTH, HEIGHT), sea_top, sea_bottom)
    dark = mood in ("night", "aurora", "storm")

    if mood in ("night", "aurora"):
        for _ in range(70):
            sx, sy = rng.randrange(WIDTH), rng.randrange(horizon - 20)
            glow = rng.randint(150, 255)
            draw.point((sx, sy), fill=(glow, glow, min(255, glow + 20)))
    if mood == "aurora":

        def aurora(layer: ImageDraw.ImageDraw) -> None:
            for band in range(3):
                phase = rng.uniform(0, math.tau)
                base_y = 50 + band * 28
                for x in range(0, WIDTH, 3):
                    y = base_y + 22 * math.sin(x / 90 + phase)
                    layer.line([(x, y), (x, y + 60)], fill=(80, 230, 150, 34 - band * 8), width=3)

        overlay(image, aurora, blur=6)
    if mood == "dusk":
        sun_x = rng.randint(380, 560)
        draw.ellipse([sun_x - 26, horizon - 30, sun_x + 26, horizon + 22], fill=(252, 204, 140))
        vertical_gradient(draw, (0, horizon, WIDTH, HEIGHT), sea_top, sea_bottom)
    if mood == "day":
        for _ in range(rng.randint(2, 4)):
            cx, cy = rng.randint(0, WIDTH), rng.randint(20, horizon - 70)
            for dx, r in ((-22, 16), (0, 22), (24, 15)):
                draw.ellipse([cx + dx - r, cy - r, cx + dx + r, cy + r], fill=(240, 244, 248))

    wave_colour = lerp(sea_top, (230, 240, 245), 0.25 if dark else 0.4)
    for row in range(7):
        y0 = horizon + 10 + row * 18
        amp = 1.5 + row * (1.4 if mood == "storm" else 0.7)
        phase = rng.uniform(0, math.tau)
        points = [(x, y0 + amp * math.sin(x / (22 + row * 6) + phase)) for x in range(0, WIDTH + 8, 8)]
        draw.line(points, fill=wave_colour, width=1 + row // 3)

    if has_any(context, ("ship", "coaster", "trawler", "vessel", "skipper", "masthead")):
        ship_x = rng.randint(60, 260) if rng.random() < 0.5 else rng.randint(420, 560)
        hull = (20, 24, 30) if not dark else (4, 6, 10)
        draw.polygon(
            [
                (ship_x, horizon - 2),
                (ship_x + 58, horizon - 2),
                (ship_x + 50, horizon + 6),
                (ship_x + 6, horizon + 6),
            ],
            fill=hull,
        )
        draw.rectangle([ship_x + 34, horizon - 12, ship_x + 48, horizon - 2], fill=hull)
        if dark:
            draw.ellipse([ship_x + 40, horizon - 19, ship_x + 44, horizon - 15], fill=(255, 240, 180))

    left_side = rng.random() < 0.5
    cliff_colour = (28, 30, 28) if dark else (62, 66, 58)
    cliff_top = horizon - rng.randint(20, 34)
    if left_side:
        cliff = [
            (0, HEIGHT),
            (0, cliff_top - 6),
            (90, cliff_top),
            (200, cliff_top + 10),
            (250, horizon + 30),
            (300, HEIGHT),
        ]
        tower_x = rng.randint(110, 160)
    else:
        cliff = [
            (WIDTH, HEIGHT),
            (WIDTH, cliff_top - 6),
            (WIDTH - 90, cliff_top),
            (WIDTH - 200, cliff_top + 10),
            (WIDTH - 250, horizon + 30),
            (WIDTH - 300, HEIGHT),
        ]
        tower_x = rng.randint(WIDTH - 160, WIDTH - 110)
    draw.polygon(cliff, fill=cliff_colour)
    grass = (44, 60, 40) if dark else (86, 112, 70)
    draw.line(cliff[1:4], fill=grass, width=4)

    base_y = cliff_top + 4
    top_y = base_y - rng.randint(92, 108)
    half_base, half_top = 20, 13
    stripe_a = (236, 232, 222) if not dark else (150, 150, 146)
    stripe_b = (178, 44, 40) if not dark else (104, 30, 30)
    stripes = 5
    for i in range(stripes):
        t0, t1 = i / stripes, (i + 1) / stripes
        y_top = base_y - (base_y - top_y) * t1
        y_bottom = base_y - (base_y - top_y) * t0
        w_top = half_base + (half_top - half_base) * t1
        w_bottom = half_base + (half_top - half_base) * t0
        draw.polygon(
            [
                (tower_x - w_bottom, y_bottom),
                (tower_x + w_bottom, y_bottom),
                (tower_x + w_top, y_top),
                (tower_x - w_top, y_top),
            ],
            fill=stripe_a if i % 2 == 0 else stripe_b,
        )
    draw.rectangle([tower_x - 19, top_y - 4, tower_x + 19, top_y], fill=(30, 30, 32))
    draw.line([(tower_x - 19, top_y - 10), (tower_x + 19, top_y - 10)], fill=(30, 30, 32), width=2)
    lamp_lit = dark or mood == "fog" or rng.random() < 0.4
    lamp_colour = (255, 236, 150) if lamp_lit else (190, 210, 220)
    draw.rectangle([tower_x - 10, top_y - 26, tower_x + 10, top_y - 4], fill=lamp_colour)
    for bar in (-4, 4):
        draw.line([(tower_x + bar, top_y - 26), (tower_x + bar, top_y - 4)], fill=(40, 40, 40))
    draw.polygon(
        [(tower_x - 14, top_y - 26), (tower_x + 14, top_y - 26), (tower_x, top_y - 40)],
        fill=(36, 40, 44),
    )
    draw.rectangle([tower_x - 6, base_y - 22, tower_x + 6, base_y], fill=(50, 40, 34))

    if lamp_lit:
        lamp_y = top_y - 15
        towards_sea = 1 if left_side else -1
        spread = rng.randint(22, 40)

        def beam(layer: ImageDraw.ImageDraw) -> None:
            far_x = tower_x + towards_sea * WIDTH
            layer.polygon(
                [(tower_x, lamp_y), (far_x, lamp_y - spread), (far_x, lamp_y + spread + 16)],
                fill=(255, 240, 170, 70 if dark else 45),
            )
            for radius, alpha in ((34, 40), (20, 70)):
                layer.ellipse(
                    [tower_x - radius, lamp_y - radius, tower_x + radius, lamp_y + radius],
                    fill=(255, 236, 160, alpha),
                )

        overlay(image, beam)
        draw = ImageDraw.Draw(image)

    if mood == "storm":

        def rain(layer: ImageDraw.ImageDraw) -> None:
            for _ in range(140):
                rx, ry = rng.randrange(-40, WIDTH), rng.randrange(HEIGHT)
                layer.line([(rx, ry), (rx + 7, ry + 18)], fill=(200, 210, 220, 90), width=1)

        overlay(image, rain)
        draw = ImageDraw.Draw(image)
    if mood == "fog":

        def fog(layer: ImageDraw.ImageDraw) -> None:
            for band in range(6):
                y = horizon - 90 + band * 34 + rng.randint(-8, 8)
                layer.rectangle([0, y, WIDTH, y + 40], fill=(220, 224, 226, 60))

        overlay(image, fog, blur=12)
        draw = ImageDraw.Draw(image)

    if has_any(context, ("barnacle", "cat")):
        cat_x = tower_x + (40 if left_side else -40)
        cat_base = cliff_top + 8
        draw_cat(draw, cat_x, cat_base, rng.uniform(0.5, 0.6), (14, 14, 16))


def draw_lantern(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, glow: bool) -> None:
    """Draw a red paper lantern hanging from a string at horizontal ``x``."""
    draw.line([(x, 0), (x, y - size // 2)], fill=(60, 40, 30), width=2)
    body = (214, 48, 40) if glow else (170, 40, 34)
    draw.rectangle([x - size // 4, y - size // 2 - 5, x + size // 4, y - size // 2], fill=(190, 150, 60))
    draw.ellipse([x - size // 2, y - size // 2, x + size // 2, y + size // 2], fill=body)
    for offset in (-size // 4, 0, size // 4):
        draw.arc(
            [x + offset - size // 6, y - size // 2, x + offset + size // 6, y + size // 2],
            start=270,
            end=90,
            fill=(150, 30, 26),
            width=1,
        )
    draw.rectangle([x - size // 4, y + size // 2, x + size // 4, y + size // 2 + 5], fill=(190, 150, 60))
    draw.line([(x, y + size // 2 + 5), (x, y + size // 2 + 24)], fill=(220, 180, 70), width=3)


def draw_teapot(draw: ImageDraw.ImageDraw, x: int, base: int, colour: RGB, scale: float) -> None:
    """Draw a squat teapot standing on ``base`` centred at ``x``, sized by ``scale``."""

    def s(v: float) -> int:
        return round(v * scale)

    shade = lerp(colour, (0, 0, 0), 0.35)
    draw.polygon(
        [
            (x + s(28), base - s(24)),
            (x + s(58), base - s(44)),
            (x + s(62), base - s(40)),
            (x + s(36), base - s(12)),
        ],
        fill=colour,
    )
    draw.arc([x - s(58), base - s(48), x - s(18), base - s(10)], start=90, end=270, fill=shade, width=s(6))
    draw.ellipse([x - s(38), base - s(50), x + s(38), base], fill=colour)
    draw.chord([x - s(38), base - s(50), x + s(38), base], start=20, end=160, fill=shade)
    draw.ellipse([x - s(20), base - s(56), x + s(20), base - s(44)], fill=shade)
    draw.ellipse([x - s(6), base - s(64), x + s(6), base - s(52)], fill=colour)


def draw_cup(draw: ImageDraw.ImageDraw, x: int, base: int, colour: RGB, scale: float, steam: bool) -> None:
    """Draw a small handle-less tea cup, optionally with rising steam."""

    def s(v: float) -> int:
        return round(v * scale)

    draw.polygon(
        [(x - s(13), base - s(20)), (x + s(13), base - s(20)), (x + s(8), base), (x - s(8), base)],
        fill=colour,
    )
    draw.ellipse([x - s(13), base - s(23), x + s(13), base - s(17)], fill=lerp(colour, (120, 90, 40), 0.55))
    if steam:
        for offset in (-4, 5):
            points = [(x + s(offset) + 3 * math.sin(step / 2), base - s(26) - step * 3) for step in range(10)]
            draw.line(points, fill=(236, 228, 214), width=1)


def paint_teahouse(image: Image.Image, rng: random.Random, context: str) -> None:
    """Paint the Half-Cup tea house: wooden wall, window, lanterns, counter, teapot, cups."""
    draw = ImageDraw.Draw(image)
    night = has_any(context, ("夜", "打烊", "停电", "月", "除夕", "晚上"))
    wall_top: RGB = (108, 70, 44) if not night else (70, 44, 30)
    wall_bottom: RGB = (150, 100, 62) if not night else (96, 62, 40)
    vertical_gradient(draw, (0, 0, WIDTH, HEIGHT), wall_top, wall_bottom)
    plank = lerp(wall_top, (0, 0, 0), 0.25)
    for x in range(rng.randint(20, 60), WIDTH, rng.randint(52, 70)):
        draw.line([(x, 0), (x, HEIGHT)], fill=plank, width=2)

    window_left = rng.random() < 0.5
    wx0 = rng.randint(30, 70) if window_left else rng.randint(WIDTH - 270, WIDTH - 230)
    wx1, wy0, wy1 = wx0 + 200, 40, 180
    rain = has_any(context, ("雨",))
    snow = has_any(context, ("雪",))
    moon = has_any(context, ("月", "中秋"))
    if night:
        outside = ((18, 22, 46), (40, 50, 82))
    elif rain:
        outside = ((96, 108, 118), (140, 150, 156))
    elif snow:
        outside = ((176, 186, 198), (226, 230, 234))
    else:
        outside = ((150, 196, 226), (214, 232, 222))
    vertical_gradient(draw, (wx0, wy0, wx1, wy1), *outside)
    roofline = lerp(outside[0], (0, 0, 0), 0.5)
    for i in range(3):
        rx = wx0 + 14 + i * 64
        draw.polygon(
            [
                (rx, wy1),
                (rx, wy1 - 40 - 8 * i),
                (rx + 26, wy1 - 58 - 8 * i),
                (rx + 52, wy1 - 40 - 8 * i),
                (rx + 52, wy1),
            ],
            fill=roofline,
        )
        if night:
            draw.rectangle([rx + 20, wy1 - 30, rx + 30, wy1 - 20], fill=(240, 200, 110))
    if moon:
        mx = rng.randint(wx0 + 40, wx1 - 40)
        draw.ellipse([mx - 20, wy0 + 14, mx + 20, wy0 + 54], fill=(250, 236, 180))
    if rain:
        for _ in range(60):
            rx, ry = rng.randint(wx0, wx1 - 6), rng.randint(wy0, wy1 - 14)
            draw.line([(rx, ry), (rx + 4, ry + 12)], fill=(200, 212, 222), width=1)
    if snow:
        for _ in range(70):
            sx, sy = rng.randint(wx0 + 2, wx1 - 2), rng.randint(wy0 + 2, wy1 - 2)
            draw.ellipse([sx - 2, sy - 2, sx + 2, sy + 2], fill=(255, 255, 255))
        draw.rectangle([wx0, wy1 - 10, wx1, wy1], fill=(236, 240, 244))
    if has_any(context, ("春节", "除夕", "过年", "元宵")):
        for cx in (wx0 - 26, wx1 + 12):
            draw.rectangle([cx, wy0 + 4, cx + 14, wy1 + 10], fill=(196, 36, 32))
            for dot in range(wy0 + 18, wy1, 22):
                draw.rectangle([cx + 4, dot, cx + 10, dot + 8], fill=(226, 184, 80))
    frame = (62, 36, 22)
    draw.rectangle([wx0, wy0, wx1, wy1], outline=frame, width=8)
    for gx in range(wx0 + 50, wx1, 50):
        draw.line([(gx, wy0), (gx, wy1)], fill=frame, width=3)
    draw.line([(wx0, (wy0 + wy1) // 2), (wx1, (wy0 + wy1) // 2)], fill=frame, width=3)

    shelf_x0 = wx1 + 40 if window_left else 40
    shelf_x1 = shelf_x0 + 300 if window_left else wx0 - 40
    for shelf_y in (96, 164):
        draw.rectangle([shelf_x0, shelf_y, shelf_x1, shelf_y + 7], fill=(80, 50, 30))
        x = shelf_x0 + 10
        while x < shelf_x1 - 34:
            jar_w, jar_h = rng.randint(22, 32), rng.randint(30, 46)
            jar = rng.choice([(70, 110, 90), (170, 140, 90), (120, 60, 50), (200, 196, 180), (60, 80, 120)])
            draw.rectangle([x, shelf_y - jar_h, x + jar_w, shelf_y], fill=jar)
            draw.rectangle([x + 3, shelf_y - jar_h - 6, x + jar_w - 3, shelf_y - jar_h], fill=(60, 40, 26))
            draw.rectangle([x + 5, shelf_y - jar_h + 10, x + jar_w - 5, shelf_y - 10], fill=(236, 222, 190))
            x += jar_w + rng.randint(8, 18)

    festive = has_any(context, ("春节", "除夕", "元宵", "中秋", "过年", "鞭炮", "灯笼"))
    lanterns = rng.randint(3, 4) if festive else rng.randint(1, 2)
    slots = sorted(rng.sample(range(1, 9), lanterns))
    for slot in slots:
        draw_lantern(draw, slot * WIDTH // 9, rng.randint(48, 70), rng.randint(34, 44), night)

    counter_top = 252
    vertical_gradient(draw, (0, counter_top, WIDTH, HEIGHT), (122, 74, 40), (70, 40, 22))
    draw.rectangle([0, counter_top - 8, WIDTH, counter_top], fill=(150, 96, 54))
    draw.line([(0, counter_top - 8), (WIDTH, counter_top - 8)], fill=(186, 130, 80), width=2)

    candles = has_any(context, ("停电", "蜡烛"))
    pot_x = rng.randint(160, 480)
    pot_colour = rng.choice([(112, 58, 40), (96, 130, 112), (226, 222, 210), (70, 50, 42)])
    draw_teapot(draw, pot_x, counter_top - 6, pot_colour, rng.uniform(1.3, 1.5))
    cup_colour = rng.choice([(238, 234, 222), (150, 180, 160), (200, 170, 120)])
    cup_slots = [x for x in range(50, WIDTH - 30, 60) if abs(x - pot_x) > 120]
    for x in rng.sample(cup_slots, k=min(len(cup_slots), rng.randint(2, 4))):
        draw_cup(draw, x, counter_top - 6, cup_colour, 1.4, steam=rng.random() < 0.7)

    if candles or night:

        def glow(layer: ImageDraw.ImageDraw) -> None:
            layer.rectangle([0, 0, WIDTH, HEIGHT], fill=(10, 6, 20, 70 if candles else 30))
            if candles:
                for cx in (pot_x - 120, pot_x + 130):
                    layer.ellipse(
                        [cx - 70, counter_top - 120, cx + 70, counter_top + 20], fill=(255, 190, 90, 40)
                    )

        overlay(image, glow, blur=18)
        draw = ImageDraw.Draw(image)
        if candles:
            for cx in (pot_x - 120, pot_x + 130):
                draw.rectangle([cx - 6, counter_top - 40, cx + 6, counter_top - 8], fill=(240, 232, 210))
                draw.ellipse([cx - 4, counter_top - 54, cx + 4, counter_top - 40], fill=(255, 200, 80))


def paint_generic(image: Image.Image, rng: random.Random, context: str) -> None:
    """Paint a soft gradient with a few translucent circles, for packs without a theme."""
    draw = ImageDraw.Draw(image)
    top: RGB = (rng.randint(20, 120), rng.randint(20, 120), rng.randint(60, 160))
    bottom: RGB = (rng.randint(120, 230), rng.randint(100, 200), rng.randint(80, 200))
    vertical_gradient(draw, (0, 0, WIDTH, HEIGHT), top, bottom)

    def circles(layer: ImageDraw.ImageDraw) -> None:
        for _ in range(6):
            cx, cy, r = rng.randrange(WIDTH), rng.randrange(HEIGHT - BAR_HEIGHT), rng.randint(20, 90)
            layer.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255, 40))

    overlay(image, circles)


PAINTERS: dict[str, Painter] = {
    "orla": paint_lighthouse,
    "xiaoman": paint_teahouse,
}


def needs_cjk(text: str) -> bool:
    """Return whether ``text`` contains wide (CJK) characters."""
    return any(unicodedata.east_asian_width(ch) in ("W", "F") for ch in text)


def find_cjk_font() -> Path | None:
    """Return the first CJK-capable font file found in the usual font folders, if any."""
    for pattern in CJK_FONT_GLOBS:
        for folder in FONT_DIRS:
            if folder.is_dir():
                matches = sorted(folder.glob(pattern))
                if matches:
                    return matches[0]
    return None


def load_font(size: int, cjk_font: Path | None, cjk: bool) -> FontType | None:
    """Load the subtitle font at ``size``, or ``None`` when CJK text has no usable font."""
    if not cjk:
        return ImageFont.load_default(size=size)
    if cjk_font is None:
        return None
    return ImageFont.truetype(str(cjk_font), size=size)


def wrap(draw: ImageDraw.ImageDraw, text: str, font: FontType, width: int, cjk: bool) -> list[str]:
    """Greedily break ``text`` into lines no wider than ``width`` pixels."""
    tokens = list(text) if cjk else text.split()
    joiner = "" if cjk else " "
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if draw.textlength(candidate, font=font) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = token
    if current:
        lines.append(current)
    return lines


def draw_subtitle(image: Image.Image, text: str, cjk_font: Path | None) -> None:
    """Darken the bottom bar and centre ``text`` in it, shrinking the font to fit."""

    def bar(layer: ImageDraw.ImageDraw) -> None:
        layer.rectangle([0, HEIGHT - BAR_HEIGHT, WIDTH, HEIGHT], fill=(0, 0, 0, 165))

    overlay(image, bar)
    draw = ImageDraw.Draw(image)
    cjk = needs_cjk(text)
    for size in (22, 19, 16, 14):
        font = load_font(size, cjk_font, cjk)
        if font is None:
            return
        lines = wrap(draw, text, font, WIDTH - 48, cjk)
        line_height = size + 6
        if len(lines) * line_height <= BAR_HEIGHT - 12:
            break
    y = HEIGHT - BAR_HEIGHT + (BAR_HEIGHT - len(lines) * line_height) // 2
    for line in lines:
        x = (WIDTH - draw.textlength(line, font=font)) / 2
        draw.text((x + 1, y + 1), line, font=font, fill=(0, 0, 0))
        draw.text((x, y), line, font=font, fill=(250, 246, 232))
        y += line_height


def read_entries(pack: Path) -> list[Entry]:
    """Parse ``images.jsonl`` of ``pack`` into entries numbered from 1."""
    entries = []
    lines = (pack / "images.jsonl").read_text(encoding="utf-8").splitlines()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        data = json.loads(raw)
        entries.append(Entry(number, data["image"], data["text"], data["scene"]))
    return entries


def encode_jpeg(image: Image.Image) -> bytes:
    """Encode ``image`` as JPEG, lowering the quality until it fits ``MAX_BYTES``."""
    quality = JPEG_QUALITY
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        data = buffer.getvalue()
        if len(data) <= MAX_BYTES or quality <= MIN_JPEG_QUALITY:
            return data
        quality -= 5


def render_entry(pack: Path, entry: Entry, cjk_font: Path | None) -> Image.Image:
    """Paint the picture for one entry of ``pack`` and add its subtitle."""
    seed = zlib.crc32(f"{pack.name}:{entry.index}".encode())
    rng = random.Random(seed)
    scene_path = pack / entry.scene
    scene_text = scene_path.read_text(encoding="utf-8") if scene_path.is_file() else ""
    image = Image.new("RGB", (WIDTH, HEIGHT))
    PAINTERS.get(pack.name, paint_generic)(image, rng, f"{scene_text}\n{entry.text}")
    draw_subtitle(image, entry.text, cjk_font)
    return image


def draw_pack(pack: Path, cjk_font: Path | None) -> int:
    """Draw every screenshot of ``pack``; return how many were written."""
    entries = read_entries(pack)
    for entry in entries:
        target = pack / entry.image
        target.parent.mkdir(parents=True, exist_ok=True)
        data = encode_jpeg(render_entry(pack, entry, cjk_font))
        target.write_bytes(data)
        print(f"{target} ({len(data) // 1024} KB)")
    return len(entries)


AVATAR_SIDE = 256
AVATAR_CONTEXT = {"orla": "night lamp beam storm", "xiaoman": "茶 壶 灯笼 夜"}
AVATAR_LEFT = {"orla": WIDTH - HEIGHT}
"""Where the square is cut from the scene, for packs whose subject is off-centre (Orla's tower)."""


def render_avatar(pack: Path) -> Image.Image:
    """A square picture of the character's place, cropped from a painted scene without subtitles."""
    rng = random.Random(zlib.crc32(f"{pack.name}:avatar".encode()))
    image = Image.new("RGB", (WIDTH, HEIGHT))
    PAINTERS.get(pack.name, paint_generic)(image, rng, AVATAR_CONTEXT.get(pack.name, ""))
    left = AVATAR_LEFT.get(pack.name, (WIDTH - HEIGHT) // 2)
    square = image.crop((left, 0, left + HEIGHT, HEIGHT))
    return square.resize((AVATAR_SIDE, AVATAR_SIDE), Image.Resampling.LANCZOS)


def draw_avatar(pack: Path) -> Path | None:
    """Write the avatar that ``character.toml`` names as a file in the pack, if it names one."""
    settings = tomllib.loads((pack / "character.toml").read_text(encoding="utf-8"))
    avatar = settings.get("avatar")
    if not isinstance(avatar, str) or avatar.startswith(("http://", "https://")):
        return None
    target = pack / avatar
    target.parent.mkdir(parents=True, exist_ok=True)
    render_avatar(pack).save(target, "PNG", optimize=True)
    print(f"{target} ({target.stat().st_size // 1024} KB)")
    return target


def default_packs() -> list[Path]:
    """Return every pack folder under ``characters/`` that has an ``images.jsonl``."""
    return sorted(path.parent for path in CHARACTERS_DIR.glob("*/images.jsonl"))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packs", nargs="*", type=Path, help="character pack folders")
    parser.add_argument("--avatars-only", action="store_true", help="draw only the avatars")
    args = parser.parse_args(argv)
    packs: list[Path] = args.packs or default_packs()
    if args.avatars_only:
        for pack in packs:
            draw_avatar(pack)
        return 0
    cjk_font = find_cjk_font()
    if cjk_font is None:
        print("no CJK font found; Chinese subtitles are left blank", file=sys.stderr)
    for pack in packs:
        if not (pack / "images.jsonl").is_file():
            print(f"{pack}: no images.jsonl", file=sys.stderr)
            return 1
        draw_pack(pack, cjk_font)
        draw_avatar(pack)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
