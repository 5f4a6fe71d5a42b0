from __future__ import annotations

import pytest

from bot.engine.replies import bound_length, clean_reply, split_message

ORLA = ["Orla Finch", "Orla", "Keeper"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Orla:「Aye, the storm comes.」", "Aye, the storm comes."),
        ("Orla Finch: Aye.\nPip: Really?\nOrla: Yes.", "Aye."),
        ("「Tie the boat.」", "Tie the boat."),
        ("Aye.\nOrla: And bring bread.", "Aye.\nAnd bring bread."),
        ("(she sighs) Fine: I will go.", "(she sighs) Fine: I will go."),
        ("Note this: the lamp is out.", "Note this: the lamp is out."),
        ("  \n\n", ""),
    ],
)
def test_clean_reply(raw: str, expected: str) -> None:
    assert clean_reply(raw, names=ORLA, max_chars=200) == expected


def test_chinese_prefix_and_brackets() -> None:
    assert (
        clean_reply("苏小满：「来壶龙井吧。」\n老周：好", names=["苏小满", "小满"], max_chars=50)
        == "来壶龙井吧。"
    )


def test_length_is_bounded_at_a_sentence_end() -> None:
    text = "The sea is calm. " * 20
    cut = bound_length(text.strip(), 60)
    assert len(cut) <= 60
    assert cut.endswith("calm.")
    assert bound_length("没有标点的一段很长很长的话" * 10, 20).endswith("…")
    assert len(bound_length("x" * 100, 20)) == 20


def test_split_message_keeps_words_and_prefers_sentence_ends() -> None:
    text = " ".join(f"Sentence number {n} is about the lamp." for n in range(100))
    parts = split_message(text, 200)
    assert all(len(part) <= 200 for part in parts)
    assert " ".join(parts) == text
    assert all(part.endswith("lamp.") for part in parts)


def test_split_message_falls_back_to_spaces_then_characters() -> None:
    assert split_message("one two three", 5) == ["one", "two", "three"]
    assert split_message("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_message("短句。" * 6, 7) == ["短句。短句。", "短句。短句。", "短句。短句。"]
    assert split_message("fits", 2000) == ["fits"]
    assert split_message("   ", 10) == []


def test_split_message_prefers_paragraphs() -> None:
    text = "First paragraph, short.\n\nSecond paragraph, a bit longer. It goes on."
    assert split_message(text, 50) == [
        "First paragraph, short.",
        "Second paragraph, a bit longer. It goes on.",
    ]
