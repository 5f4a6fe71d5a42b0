from __future__ import annotations

import pytest

from bot.engine.replies import bound_length, clean_reply

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
