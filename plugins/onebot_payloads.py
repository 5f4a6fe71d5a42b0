"""OneBot v11 payloads as they arrive, made safe for NoneBot's event models and for our plugin.

A OneBot implementation (or whoever holds its token) can send what NoneBot's adapter was not written
for: a frame that is not JSON, JSON nested deeper than Python recurses, message segments without the
field NoneBot or the plugin indexes (an ``at`` without ``qq``, a ``reply`` without ``id``, a segment
that is not an object). :func:`parse_frame` decodes a frame without raising; :func:`clean_event`
and :func:`drop_broken_segments` remove the broken segments, so one bad segment costs that
segment, not the message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableSequence
from typing import Any

from nonebot.adapters.onebot.v11 import MessageSegment

log = logging.getLogger(__name__)

UNREADABLE = object()
"""What :func:`parse_frame` returns for a frame that is not JSON (``None`` is JSON's ``null``)."""

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays a payload may have. Events and API answers stay near ten
(a forwarded message's nodes included); deeper ones are refused before NoneBot walks them, since
its models, ``repr`` and logging recurse once per level."""

_REQUIRED = {"text": "text", "at": "qq", "reply": "id"}
"""The field each segment type must carry: NoneBot and the plugin read these without a default."""


def parse_frame(data: str | bytes) -> Any:
    """The JSON value of a WebSocket frame or request body, or :data:`UNREADABLE` with a warning.

    Every decoding failure is caught: invalid JSON or UTF-8 (``ValueError``), JSON nested past the
    interpreter's recursion limit (``RecursionError``), and JSON nested past :data:`MAX_DEPTH`.
    """
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        log.warning("dropped a OneBot frame that is not JSON (%s): %.60r", type(exc).__name__, data[:60])
        return UNREADABLE
    if too_deep(value, MAX_DEPTH):
        log.warning("dropped a OneBot frame nested more than %d levels deep: %.60r", MAX_DEPTH, data[:60])
        return UNREADABLE
    return value


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def segment_fault(kind: Any, data: Any) -> str | None:
    """Why a segment cannot be used (``None`` when it can): no type, data that is not an object,
    or a missing field its type needs."""
    if not isinstance(kind, str) or not kind:
        return "it has no type"
    if not isinstance(data, Mapping):
        return "its data is not an object"
    field = _REQUIRED.get(kind)
    if field is None:
        return None
    value = data.get(field)
    if kind == "text":
        return None if isinstance(value, str) else "its text is not a string"
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return f"it has no {field}"
    return None


def _clean_segments(segments: list[Any], message_id: Any) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for segment in segments:
        if not isinstance(segment, Mapping):
            log.warning("dropped a segment of message %s: it is not an object", message_id)
            continue
        kind, data = segment.get("type"), segment.get("data")
        data = {} if data is None else data
        if (fault := segment_fault(kind, data)) is not None:
            log.warning("dropped a %.20r segment of message %s: %s", kind, message_id, fault)
            continue
        kept.append({"type": kind, "data": dict(data)})
    return kept


def clean_event(payload: Any) -> Any:
    """``payload`` with the broken segments of its message array removed (a message event only;
    anything else comes back as it is). Messages in CQ-code text are left to
    :func:`drop_broken_segments` once NoneBot has parsed them."""
    if not isinstance(payload, dict) or payload.get("post_type") != "message":
        return payload
    message = payload.get("message")
    if isinstance(message, Mapping):
        message = [message]
    if not isinstance(message, list):
        return payload
    return {**payload, "message": _clean_segments(message, payload.get("message_id"))}


def drop_broken_segments(message: MutableSequence[MessageSegment]) -> None:
    """Remove, in place, the segments of a parsed message that :func:`segment_fault` refuses
    (CQ-code text such as ``[CQ:at]`` parses into an ``at`` without ``qq``)."""
    for index in reversed(range(len(message))):
        segment = message[index]
        if (fault := segment_fault(segment.type, segment.data)) is not None:
            log.warning("dropped a %.20r segment: %s", segment.type, fault)
            del message[index]
