"""Builders of sample inputs for the importers: cards, CHARX, ChatHaruhi data, corpora, hostile files.

The characters are written for these tests: Wren Calloway pilots the night ferry across Saltmere Sound;
阿蔓 sells scallion pancakes at a night market; 陳婆婆 keeps a sweet-soup shop (her lines are in
Traditional Chinese, and must stay so).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

WREN: dict[str, Any] = {
    "name": "Wren Calloway",
    "description": (
        "{{char}} pilots the night ferry Marigold across Saltmere Sound. She has done it for nineteen "
        "years and knows every buoy by its creak."
    ),
    "personality": "dry, patient, superstitious about whistling on deck",
    "scenario": "{{user}} boards the last crossing of the evening, soaked from the rain.",
    "system_prompt": "Stay in character as {{char}}. Keep replies under three sentences.",
    "first_mes": "*Wren taps the fare tin.* Last crossing, {{user}}. Mind the wet rail.",
    "mes_example": (
        "<START>\n"
        "{{user}}: Is the fog going to hold us up?\n"
        "{{char}}: Fog never stopped the Marigold. It only makes her sulk.\n"
        "<START>\n"
        "{{user}}: Why do you never whistle on deck?\n"
        "{{char}}: Whistling calls the wind,\n"
        "and the wind never pays its fare.\n"
    ),
    "alternate_greetings": ["The Marigold leaves in five minutes, {{user}}. The tide waits for nobody."],
    "tags": ["ferry", "harbour"],
    "creator": "importer tests",
    "creator_notes": "Written for the bot's importer tests.",
    "character_version": "1.0",
    "post_history_instructions": "",
    "group_only_greetings": [],
    "extensions": {"talkativeness": "0.4", "x_tidewatch": {"chart": "Saltmere-7", "moon_phase_aware": True}},
    "character_book": {
        "name": "Saltmere Sound",
        "extensions": {},
        "entries": [
            {
                "keys": ["Ballast"],
                "content": "Ballast is {{char}}'s one-eyed parrot; he rides on the compass box.",
                "enabled": True,
                "insertion_order": 10,
                "name": "parrot",
                "extensions": {},
            },
            {
                "keys": ["Gullrock", "lighthouse"],
                "content": "The Gullrock light has been dark since the spring storm.",
                "enabled": True,
                "insertion_order": 20,
                "comment": "lighthouse",
                "case_sensitive": True,
                "extensions": {},
            },
            {
                "keys": [],
                "content": "Saltmere Sound freezes at its edges in deep winter.",
                "constant": True,
                "enabled": True,
                "insertion_order": 0,
                "extensions": {},
            },
            {"keys": ["draft"], "content": "", "enabled": True, "insertion_order": 99, "extensions": {}},
            {
                "keys": ["fare"],
                "content": "A crossing costs two copper tokens.",
                "enabled": False,
                "insertion_order": 30,
                "extensions": {},
            },
        ],
    },
    "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
}

WREN_V1: dict[str, Any] = {
    "name": "Wren Calloway",
    "description": "<BOT> pilots the night ferry Marigold across Saltmere Sound.",
    "personality": "dry, patient",
    "scenario": "<USER> is the only passenger tonight.",
    "first_mes": "Last crossing, <USER>.",
    "mes_example": "<START>\n<USER>: Busy night?\n<BOT>: Quiet as a drowned bell.",
}

LINXIAOZAO: dict[str, Any] = {
    "name": "林小灶",
    "description": "{{char}}在老街口摆煎饼摊，十年没换过地方。",
    "personality": "嘴硬心软，记得每个熟客的口味",
    "first_mes": "来啦？还是老样子，加蛋不加葱？",
    "mes_example": "<START>\n{{user}}：今天排队的人好多啊。\n{{char}}：下雨天，大家都想吃口热乎的。",
}


def v3(data: dict[str, Any]) -> dict[str, Any]:
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": copy.deepcopy(data)}


def v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": copy.deepcopy(data)}


def encode_card(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def picture(size: tuple[int, int] = (48, 72), colour: tuple[int, int, int] = (30, 90, 140)) -> Image.Image:
    return Image.new("RGB", size, colour)


def write_card_png(
    path: Path, chunks: dict[str, dict[str, Any]], *, size: tuple[int, int] = (48, 72)
) -> Path:
    """A card PNG: a small picture with each of ``chunks`` (``{"ccv3": card}``) as a base64 tEXt chunk."""
    info = PngInfo()
    for key, card in chunks.items():
        info.add_text(key, encode_card(card))
    picture(size).save(path, "PNG", pnginfo=info)
    return path


def card_png_bytes(card: dict[str, Any], key: str = "ccv3") -> bytes:
    """A card PNG as the bytes a user uploads in a chat."""
    info = PngInfo()
    info.add_text(key, encode_card(card))
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info)
    return out.getvalue()


def write_json(path: Path, value: Any, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(json.dumps(value, ensure_ascii=False, indent=2).encode(encoding))
    return path


def png_bytes(size: tuple[int, int] = (32, 32), colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    out = io.BytesIO()
    picture(size, colour).save(out, "PNG")
    return out.getvalue()


def write_charx(path: Path, data: dict[str, Any] | None = None) -> Path:
    """A CHARX archive: ``card.json`` naming an embedded icon, the icon, and one asset of another kind."""
    card = v3(data or WREN)
    card["data"]["assets"] = [
        {"type": "icon", "uri": "embeded://assets/icon/images/wren.png", "name": "main", "ext": "png"},
        {"type": "other", "uri": "embeded://assets/other/chart.txt", "name": "chart", "ext": "txt"},
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", json.dumps(card, ensure_ascii=False))
        archive.writestr("assets/icon/images/wren.png", png_bytes((40, 60)))
        archive.writestr("assets/other/chart.txt", "Saltmere Sound, soundings in fathoms.")
    return path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_bomb_png(path: Path, card: dict[str, Any], *, width: int = 20000, height: int = 20000) -> Path:
    """A card PNG whose header promises ``width`` x ``height`` pixels with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    text = b"ccv3\0" + encode_card(card).encode("ascii")
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", text)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )
    return path


AMAN_PROMPT = (
    "你正在扮演阿蔓，城南夜市里卖葱油饼的摊主。阿蔓说话爽快，爱跟熟客拌嘴，"
    "总把最后一张饼留给收摊晚的清洁工老陈。请用阿蔓的口吻回答。"
)
AMAN_STORIES = [
    "小周:「阿蔓姐，今天的饼怎么这么香？」\n阿蔓:「葱是早上刚从菜场抢的，能不香吗？」\n"
    "小周:「给我来两张，多放辣。」\n阿蔓:「辣子管够，钱可一分不能少。」",
    "旁白:「夜市快收摊了，雨越下越大。」\n老陈:「还有饼吗？扫完这条街就饿了。」\n阿蔓:「一直给你留着呢，趁热吃。」",
    "小李:「阿蔓，摊子往里挪一挪。」\n阿蔓:「挪了挪了，再挪就进河里了。」",
    "小周:「老陈今天来了吗？」\n老陈:「来了，在那边吃饼呢。」",
]


def _vector(seed: int, dims: int = 8) -> list[float]:
    return [round(((seed * 7 + i * 3) % 11) / 11, 3) for i in range(dims)]


def _vector_base64(seed: int) -> str:
    return base64.b64encode(b"".join(struct.pack("!f", x) for x in _vector(seed))).decode("ascii")


def write_chatharuhi_jsonl(path: Path, *, column: str = "bge_zh_s15", floats: bool = False) -> Path:
    """ChatHaruhi's layout: a ``config`` row, the system prompt marked in the embedding column, stories."""
    rows: list[dict[str, Any]] = [
        {"text": "version 2", column: "config"},
        {"text": AMAN_PROMPT, column: "system_prompt"},
    ]
    for seed, story in enumerate(AMAN_STORIES):
        rows.append({"text": story, column: _vector(seed) if floats else _vector_base64(seed)})
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    return path


def write_chatharuhi_jsonl_prompt_first(path: Path) -> Path:
    """No marker: the first row, which has no dialogue line, is the system prompt."""
    rows = [{"text": AMAN_PROMPT, "luotuo_openai": _vector(9)}]
    rows += [{"text": story, "luotuo_openai": _vector(seed)} for seed, story in enumerate(AMAN_STORIES)]
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    return path


def write_chatharuhi_folder(folder: Path, *, encoding: str = "gbk") -> Path:
    """``system_prompt.txt`` and ``texts/*.txt``, saved as a Chinese Windows editor would (GBK)."""
    (folder / "texts").mkdir(parents=True)
    (folder / "system_prompt.txt").write_bytes(AMAN_PROMPT.encode(encoding))
    for number, story in enumerate(AMAN_STORIES, start=1):
        (folder / "texts" / f"{number:03d}.txt").write_bytes(story.replace("\n", "\r\n").encode(encoding))
    return folder


WREN_QA = """\
Visitor: How long is the crossing?
Wren: Forty minutes, fifty if the Sound is in a mood.

Kid: Can I steer?
Wren: When you can see over the wheel, yes.

Visitor: Do you ever get seasick?
Wren: Only on land.
"""

WREN_TRANSCRIPT = """\
Pip: Wren, the harbourmaster wants the Marigold checked before dawn.
Wren: Then he can lend me his spanner.
Pip: He says you still owe him the last one.
Pip: And a crate of lemons.

Ines: Is it true you once crossed in a gale?
Wren: Twice. The second time on purpose.
Pip: She still won't tell me why.

Pip: The fog bell is ringing.
Pip: Nobody answers it.
"""

CHEN_TRANSCRIPT = """\
阿樂：婆婆，今晚有紅豆沙嗎？
陳婆婆：有，煲了一下午，綿得很。
阿樂：那給我一碗，少糖。

陳婆婆：颱風天還出來，傻孩子。
阿樂：想喝您的糖水嘛。
陳婆婆：坐下吧，我再熱一熱。
旁白：窗外的風把招牌吹得嘎嘎響。

陳婆婆：明天記得帶傘。
阿樂：知道啦，婆婆晚安。
陳婆婆：晚安，路上小心。
"""


def write_text(path: Path, text: str, encoding: str) -> Path:
    """``text`` saved in ``encoding`` (``utf-8-sig`` gives UTF-8 with a byte-order mark)."""
    path.write_bytes(text.encode(encoding))
    return path


def write_zip(path: Path, entries: dict[str, bytes | str], *, symlinks: dict[str, str] | None = None) -> Path:
    """A zip with ``entries`` written under their names as given (``../x`` and ``/x`` included)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def pack_entries(prefix: str = "") -> dict[str, bytes | str]:
    """The files of a small valid pack, for building archives around it."""
    return {
        f"{prefix}character.toml": (
            'name = "Tamsin Reed"\naliases = ["Tam"]\npersona = "You are Tamsin Reed."\n'
        ),
        f"{prefix}scenes/001.txt": "Wren: Need a hand with the nets?\nTamsin Reed: Always.\n",
    }


def shrink_declared_size(data: bytes, name: str, size: int) -> bytes:
    """The zip ``data`` with the central directory's uncompressed size of ``name`` set to ``size`` (a lie)."""
    encoded = name.encode()
    at = data.index(b"PK\x01\x02")
    while True:
        name_length = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if data[at + 46 : at + 46 + name_length] == encoded:
            return data[: at + 24] + struct.pack("<I", size) + data[at + 28 :]
        at = data.index(b"PK\x01\x02", at + 4)


def listing(folder: Path) -> list[str]:
    """Every path under ``folder``, hidden ones included: compared before and after a refused import."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))
