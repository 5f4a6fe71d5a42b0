"""Builders of real character packs on disk, for tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

ORLA_SCENES = {
    "001": ["Pip: Orla, the storm is coming.", "Orla: Then tie the boat twice, Pip.", "Pip: Twice?"],
    "002": ["Tam: Your cat ate my fish again.", "Orla: Barnacle has taste. Your fish does not."],
    "003": ["Ines: Do you ever get lonely out here?", "Orla: The lamp keeps me company. Mostly."],
}


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
) -> Path:
    """Write a pack folder under ``root`` and return it."""
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
    return folder


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
