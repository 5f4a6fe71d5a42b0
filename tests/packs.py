"""Builders of real character packs on disk, for tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image

ORLA_SCENES = {
    "001": ["Pip: Orla, the storm is coming.", "Orla: Then tie the boat twice, Pip.", "Pip: Twice?"],
    "002": ["Tam: Your cat ate my fish again.", "Orla: Barnacle has taste. Your fish does not."],
    "003": ["Ines: Do you ever get lonely out here?", "Orla: The lamp keeps me company. Mostly."],
}

ORLA_CAPTIONS = ("Then tie the boat twice, Pip.", "Barnacle has taste. Your fish does not.")


def write_pack(
    root: Path,
    pack_id: str = "orla",
    *,
    name: str = "Orla Finch",
    aliases: Sequence[str] = ("Orla", "Keeper"),
    language: str = "en",
    persona: str = "You are Orla Finch, a lighthouse keeper. Speak briefly.",
    scenes: Mapping[str, Sequence[str]] = ORLA_SCENES,
    extra_toml: str = "",
    screenshots: Sequence[str] = (),
) -> Path:
    """Write a pack folder under ``root`` and return it.

    Each of ``screenshots`` is the caption of a small drawn frame listed in ``images.jsonl``.
    """
    folder = root / pack_id
    (folder / "scenes").mkdir(parents=True)
    alias_list = ", ".join(f'"{alias}"' for alias in aliases)
    (folder / "character.toml").write_text(
        f'name = "{name}"\naliases = [{alias_list}]\nlanguage = "{language}"\n'
        f'description = "{name}, for tests"\ngreeting = "Hello from {name}."\n'
        f'persona = """\n{persona}\n"""\n{extra_toml}',
        encoding="utf-8",
    )
    for scene_id, lines in scenes.items():
        (folder / "scenes" / f"{scene_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if screenshots:
        write_screenshots(folder, screenshots)
    return folder


def write_screenshots(folder: Path, captions: Sequence[str], *, size: tuple[int, int] = (160, 90)) -> None:
    """Draw one frame per caption, each a different colour, and list them in ``images.jsonl``."""
    (folder / "images").mkdir(exist_ok=True)
    entries = []
    for number, caption in enumerate(captions, start=1):
        name = f"images/{number:04d}.jpg"
        Image.new("RGB", size, ((number * 70) % 256, 120, 200)).save(folder / name, "JPEG")
        entries.append(json.dumps({"image": name, "text": caption}, ensure_ascii=False))
    (folder / "images.jsonl").write_text("\n".join(entries) + "\n", encoding="utf-8")


XIAOMAN_SCENES = {
    "001": ["老周:「小满，今天喝什么茶？」", "苏小满:「下雨天，来壶普洱暖暖身子。」"],
    "002": ["阿杰:「中秋节你回家吗？」", "苏小满:「茶馆走不开，月饼倒是备好了。」"],
}


def write_xiaoman(root: Path) -> Path:
    return write_pack(
        root,
        "xiaoman",
        name="苏小满",
        aliases=("小满", "满掌柜"),
        language="zh",
        persona="你是苏小满，茶馆掌柜。",
        scenes=XIAOMAN_SCENES,
    )
