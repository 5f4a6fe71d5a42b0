"""What arrives from a OneBot implementation is read without raising; a broken segment costs only itself."""

from __future__ import annotations

from typing import Any

import pytest
from nonebot.adapters.onebot.v11 import GroupMessageEvent, Message, MessageSegment

from plugins.adapters import TolerantOneBotAdapter
from plugins.onebot_payloads import (
    MAX_DEPTH,
    UNREADABLE,
    clean_event,
    drop_broken_segments,
    parse_frame,
    too_deep,
)


def group_message(message: Any) -> dict[str, Any]:
    return {
        "time": 1,
        "self_id": 10_000,
        "post_type": "message",
        "message_type": "group",
        "sub_type": "normal",
        "message_id": 7,
        "group_id": 1001,
        "user_id": 501,
        "message": message,
        "raw_message": "",
        "font": 0,
        "sender": {"user_id": 501, "nickname": "user501"},
    }


@pytest.mark.parametrize(
    "frame",
    ["{not json", "[" * 10_000 + "]" * 10_000, '{"a": ' * 5_000 + "1" + "}" * 5_000, b"\xff\xfe", ""],
    ids=["invalid", "deep-array", "deep-object", "not-utf8", "empty"],
)
def test_a_frame_that_is_not_readable_json_is_reported_not_raised(frame: str | bytes) -> None:
    assert parse_frame(frame) is UNREADABLE


def test_json_null_is_not_mistaken_for_an_unreadable_frame() -> None:
    assert parse_frame("null") is None


def test_a_frame_nested_past_the_limit_is_refused_before_nonebot_walks_it() -> None:
    assert parse_frame("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) is UNREADABLE
    assert parse_frame('{"a": ' * (MAX_DEPTH + 1) + "{}" + "}" * (MAX_DEPTH + 1)) is UNREADABLE
    at_the_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_frame(at_the_limit) is not UNREADABLE
    answer = {"data": {"messages": [{"content": [{"type": "text", "data": {}}]}]}}
    assert not too_deep(answer, 7)
    assert too_deep(answer, 6)


def test_broken_segments_are_dropped_and_the_rest_of_the_message_kept() -> None:
    payload = group_message(
        [
            {"type": "at"},
            {"type": "at", "data": {"qq": ""}},
            {"type": "reply", "data": {}},
            "not an object",
            {"data": {"text": "no type"}},
            {"type": "text", "data": {"text": 5}},
            {"type": "face", "data": None},
            {"type": "image", "data": ["not", "an", "object"]},
            {"type": "at", "data": {"qq": 777}},
            {"type": "text", "data": {"text": " hello"}},
        ]
    )
    cleaned = clean_event(payload)
    assert cleaned["message"] == [
        {"type": "face", "data": {}},
        {"type": "at", "data": {"qq": 777}},
        {"type": "text", "data": {"text": " hello"}},
    ]
    assert payload["message"][0] == {"type": "at"}, "the payload given is left as it was"
    other = {"post_type": "meta_event", "message": ["x"]}
    assert clean_event(other) == other
    assert clean_event(group_message({"type": "at"}))["message"] == [], "a lone segment object too"


def test_cq_code_text_loses_its_broken_segments_once_parsed() -> None:
    message = Message("[CQ:at]hi [CQ:reply][CQ:at,qq=777]")
    drop_broken_segments(message)
    assert message == Message([MessageSegment.text("hi "), MessageSegment.at(777)])


def test_the_adapter_makes_an_event_of_a_message_with_broken_segments_and_never_raises() -> None:
    event = TolerantOneBotAdapter.json_to_event(
        group_message([{"type": "at"}, "junk", {"type": "text", "data": {"text": "still here"}}])
    )
    assert isinstance(event, GroupMessageEvent)
    assert event.get_plaintext() == "still here"
    assert event.original_message == Message("still here")

    string_form = TolerantOneBotAdapter.json_to_event(group_message("[CQ:at] via CQ code"))
    assert isinstance(string_form, GroupMessageEvent)
    assert [segment.type for segment in string_form.message] == ["text"]

    deep: list[Any] = []
    for _ in range(5_000):
        deep = [deep]
    assert TolerantOneBotAdapter.json_to_event(group_message("x") | {"sender": deep}) is None
    assert TolerantOneBotAdapter.json_to_event({"post_type": "message", "message_type": "group"}) is None
    assert TolerantOneBotAdapter.json_to_event(["not", "an", "event"]) is None
