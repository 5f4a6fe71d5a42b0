"""Lorebook entries enter the prompt when the conversation calls for them, in order and on budget."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.config import PromptConfig
from bot.engine.lorebook import triggered
from bot.engine.pack_schema import LoreEntry
from bot.engine.packs import load_pack
from bot.engine.prompt import PromptBuilder, TokenCounter, Turn
from bot.errors import PackError
from tests.packs import write_pack

BOOK: list[dict[str, Any]] = [
    {
        "keys": ["Barnacle"],
        "content": "Barnacle is Orla's grey cat; he steals kippers.",
        "insertion_order": 20,
    },
    {
        "keys": ["ferry", "Northway"],
        "content": "Northway Ferries keeps cutting sailings.",
        "insertion_order": 10,
    },
    {"keys": ["半盏"], "content": "半盏茶馆开在槐荫巷。"},
    {"keys": ["lamp"], "content": "The lamp is a second-order Fresnel lens.", "enabled": False},
    {
        "keys": [],
        "content": "Skerrow Isle lies in the cold northern sea.",
        "constant": True,
        "insertion_order": 0,
    },
]


def entries() -> list[LoreEntry]:
    return [LoreEntry.model_validate(entry) for entry in BOOK]


def contents(found: list[LoreEntry]) -> list[str]:
    return [entry.content for entry in found]


def test_keys_match_whole_words_case_insensitively() -> None:
    assert contents(triggered(entries(), ["where is barnacle?"]))[1:] == [BOOK[0]["content"]]
    assert contents(triggered(entries(), ["Barnacles on the hull"]))[1:] == [], "a Latin key is a whole word"


def test_chinese_keys_match_inside_text_and_disabled_entries_never() -> None:
    assert contents(triggered(entries(), ["去半盏喝茶吧"]))[1:] == ["半盏茶馆开在槐荫巷。"]
    assert contents(triggered(entries(), ["is the lamp lit?"])) == [BOOK[4]["content"]]


def test_constant_entries_always_come_and_order_follows_insertion_order() -> None:
    found = contents(triggered(entries(), ["Barnacle took the ferry"]))
    assert found == [BOOK[4]["content"], BOOK[1]["content"], BOOK[0]["content"]]


@pytest.fixture
def pack_with_lore(tmp_path: Path) -> Path:
    folder = write_pack(tmp_path)
    (folder / "lorebook.json").write_text(json.dumps({"entries": BOOK}), encoding="utf-8")
    return folder


def test_the_prompt_carries_triggered_entries_within_the_budget(pack_with_lore: Path) -> None:
    pack = load_pack(pack_with_lore)
    assert len(pack.lore) == 4, "disabled entries are dropped at load"
    builder = PromptBuilder(PromptConfig(), TokenCounter.default())
    history = [Turn("Pip", "the Northway boat is late again"), Turn("Orla Finch", "Typical.", True)]
    prompt = builder.build(pack, [], history, Turn("Pip", "and Barnacle?"))
    assert prompt.lore == [BOOK[4]["content"], BOOK[1]["content"], BOOK[0]["content"]]
    assert "What you know that bears on this:\n- Skerrow Isle" in prompt.system_text()
    assert prompt.tokens.lore > 0

    tight = PromptBuilder(PromptConfig(lore_tokens=16), TokenCounter.default())
    assert tight.build(pack, [], history, Turn("Pip", "and Barnacle?")).lore == [BOOK[4]["content"]]
    unscanned = PromptBuilder(PromptConfig(lore_scan_turns=0), TokenCounter.default())
    assert BOOK[1]["content"] not in unscanned.build(pack, [], history, Turn("Pip", "and Barnacle?")).lore


def test_a_bad_lorebook_is_refused_naming_the_file(pack_with_lore: Path) -> None:
    (pack_with_lore / "lorebook.json").write_text('{"entries": [{"keys": ["x"]}]}', encoding="utf-8")
    with pytest.raises(PackError, match=r"lorebook\.json: entries\.0\.content: Field required"):
        load_pack(pack_with_lore)


def test_the_documented_lorebook_loads(tmp_path: Path) -> None:
    page = (Path(__file__).parents[2] / "docs" / "characters.md").read_text("utf-8")
    block = next(block for block in re.findall(r"```json\n(.+?)```", page, re.S) if '"entries"' in block)
    folder = write_pack(tmp_path)
    (folder / "lorebook.json").write_text(block, encoding="utf-8")
    lore = load_pack(folder).lore
    assert [entry.constant for entry in lore] == [False, False, True]
    found = contents(triggered(lore, ["Barnacle again"]))
    assert found == [
        "Barnacle is Orla's grey cat; he steals kippers.",
        "Skerrow Isle lies in the cold northern sea.",
    ]
