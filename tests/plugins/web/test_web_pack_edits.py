"""Pack edits from the console: ``character.toml`` changed key by key with the rest of the text kept,
every edit checked by the pack loader in a copy that shares nothing writable with the pack, and no
path outside the pack."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.errors import PackError
from plugins.web.pack_edits import PackEdit, check, new_scene_name, scene_edit, settings_edit, with_values
from tests.packs import write_pack

TOML = '''# Orla, for the edit tests
name = "Orla Finch"
aliases = ["Orla", "Keeper"]  # what calls her
persona = """
You are Orla.
name = "not a key: a line of the persona"
"""
deflection = "The lamp needs me."

[voice]
translate_to = "ja"
'''


def test_only_the_changed_keys_are_rewritten() -> None:
    text = with_values(
        Path("character.toml"),
        TOML,
        {
            "persona": "You are Orla Finch.\nYou keep the light.",
            "aliases": ["Orla", "Keeper"],
            "greeting": 'Mind the "step".',
            "deflection": ["The lamp needs me.", "Tide's turning."],
        },
    )
    assert text.startswith('# Orla, for the edit tests\nname = "Orla Finch"\n')
    assert 'aliases = ["Orla", "Keeper"]  # what calls her\n' in text, "an unchanged key keeps its comment"
    assert text.endswith('greeting = "Mind the \\"step\\"."\n\n[voice]\ntranslate_to = "ja"\n')
    data = tomllib.loads(text)
    assert data["persona"] == "You are Orla Finch.\nYou keep the light.\n"
    assert data["deflection"] == ["The lamp needs me.", "Tide's turning."]
    assert data["voice"] == {"translate_to": "ja"}
    assert with_values(Path("character.toml"), TOML, {"deflection": ["The lamp needs me."]}) == TOML


def test_an_empty_persona_is_refused_at_its_line(tmp_path: Path) -> None:
    root = write_pack(tmp_path)
    with pytest.raises(PackError, match="persona: say who the character is") as refused:
        settings_edit(root, {"persona": "  \n"})
    assert refused.value.line == 6


def test_a_refused_edit_leaves_the_pack_as_it_was(tmp_path: Path) -> None:
    root = write_pack(tmp_path)
    before = (root / "scenes" / "001.txt").read_bytes()
    with pytest.raises(PackError) as refused:
        check(root, scene_edit(root, "001", "Pip: fine\nnot a line"))
    assert (refused.value.path, refused.value.line) == (root / "scenes" / "001.txt", 2)
    assert (root / "scenes" / "001.txt").read_bytes() == before, "the copy's files were replaced, not written"
    assert [path.name for path in tmp_path.iterdir()] == ["orla"], "the copy is gone"
    check(root, scene_edit(root, "001", "Pip: fine"))


def test_new_files_are_numbered_after_the_last(tmp_path: Path) -> None:
    root = write_pack(tmp_path)
    assert new_scene_name(root) == "004"
    (root / "scenes" / "0099.txt").write_text("A: b\n", encoding="utf-8")
    assert new_scene_name(root) == "0100"


def test_no_path_leaves_the_pack(tmp_path: Path) -> None:
    root = tmp_path / "orla"
    root.mkdir()
    with pytest.raises(PackError, match="lies outside the pack"):
        PackEdit({"../other/character.toml": b""}).apply(root)
    with pytest.raises(PackError, match="lies outside the pack"):
        PackEdit(deletes=["."]).apply(root)
    assert not (tmp_path / "other").exists()
