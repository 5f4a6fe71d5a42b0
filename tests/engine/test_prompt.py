from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import PromptConfig
from bot.engine.packs import CharacterPack, load_pack
from bot.engine.prompt import PromptBuilder, TokenCounter, Turn
from tests.packs import write_pack


@pytest.fixture
def pack(tmp_path: Path) -> CharacterPack:
    return load_pack(write_pack(tmp_path, persona="You are Orla. " * 200))


@pytest.fixture
def counter() -> TokenCounter:
    return TokenCounter.default()


def test_counter_is_cl100k_and_offline(counter: TokenCounter) -> None:
    assert counter.count("hello world") == 2
    assert counter.count("你好") >= 1
    assert counter.truncate("one two three four", 2) == "one two"


def test_every_part_stays_in_its_budget(pack: CharacterPack, counter: TokenCounter) -> None:
    budgets = PromptConfig(persona_tokens=60, scenes_tokens=40, history_tokens=50, message_tokens=20)
    history = [Turn(f"user{i}", f"message number {i} about the sea and the lamp") for i in range(30)]
    prompt = PromptBuilder(budgets, counter).build(pack, pack.scenes, history, Turn("Pip", "word " * 100))
    assert counter.count(prompt.persona) <= 60
    assert prompt.tokens.scenes <= 40
    assert prompt.tokens.history <= 50
    assert counter.count(prompt.message.text) <= 20
    assert 0 < len(prompt.history) < 30
    assert prompt.history[-1].text == history[-1].text, "the newest history is kept"
    assert len(prompt.scenes) < len(pack.scenes)


def test_history_never_has_a_gap(pack: CharacterPack, counter: TokenCounter) -> None:
    budgets = PromptConfig(history_tokens=60)
    history = [Turn("a", "short"), Turn("b", "long " * 200), Turn("c", "short too")]
    prompt = PromptBuilder(budgets, counter).build(pack, [], history, Turn("d", "hi"))
    assert [turn.speaker for turn in prompt.history] == ["c"]


def test_history_turn_limit(pack: CharacterPack, counter: TokenCounter) -> None:
    budgets = PromptConfig(history_turns=2)
    history = [Turn("a", "1"), Turn("b", "2"), Turn("c", "3")]
    prompt = PromptBuilder(budgets, counter).build(pack, [], history, Turn("d", "hi"))
    assert [turn.text for turn in prompt.history] == ["2", "3"]


def test_layout_follows_chatharuhi(pack: CharacterPack, counter: TokenCounter) -> None:
    builder = PromptBuilder(PromptConfig(), counter)
    history = [Turn("Pip", "Is the lamp lit?"), Turn("Orla Finch", "Always.", from_character=True)]
    prompt = builder.build(pack, pack.scenes[:2], history, Turn("Tam", "Storm tonight?"))
    messages = prompt.to_messages()
    system = messages[0]["content"]
    assert messages[0]["role"] == "system"
    assert system.startswith("You are Orla.")
    assert "Classic scenes of Orla Finch:" in system
    assert "Pip:「Twice?」\n###\nTam:「Your cat ate my fish again.」" in system
    assert messages[1:] == [
        {"role": "user", "content": "Pip:「Is the lamp lit?」"},
        {"role": "assistant", "content": "Always."},
        {"role": "user", "content": "Tam:「Storm tonight?」"},
    ]
    assert prompt.to_completion().endswith("Tam:「Storm tonight?」\nOrla Finch:「")
