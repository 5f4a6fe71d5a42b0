"""OneBot credentials as the adapter reads them, and the frame limit that fits the import limit."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from nonebot.drivers import Request

from plugins.adapters import MIN_WS_FRAME, presented_token, signed, ws_max_size

BODY = b'{"post_type": "message"}'


def post(url: str = "http://bot/onebot/v11/http", **headers: str) -> Request:
    return Request("POST", url, headers=headers, content=BODY)


def test_the_token_comes_from_the_authorization_header_or_the_query() -> None:
    assert presented_token(post(authorization="Bearer abc")) == "abc"
    assert presented_token(post(authorization="Token abc")) == "abc"
    assert presented_token(post("http://bot/onebot/v11/http?access_token=xyz")) == "xyz"
    assert presented_token(post(authorization="Basic abc")) is None
    assert presented_token(post(authorization="Bearer ")) is None
    assert presented_token(post()) is None


def test_a_signature_must_be_the_bodys_hmac_by_the_secret() -> None:
    good = "sha1=" + hmac.new(b"s3cret", BODY, hashlib.sha1).hexdigest()
    assert signed(post(**{"x-signature": good}), "s3cret")
    assert signed(post(**{"x-signature": good.upper().replace("SHA1=", "sha1=")}), "s3cret")
    assert not signed(post(**{"x-signature": good}), "other")
    assert not signed(post(**{"x-signature": "sha1=" + "0" * 40}), "s3cret")
    assert not signed(post(**{"x-signature": "sha1=ä"}), "s3cret"), "a non-ASCII header is just wrong"
    assert not signed(post(), "s3cret")


HEADROOM = 1024 * 1024


@pytest.mark.parametrize(
    ("max_import_mb", "expected"),
    [(1, MIN_WS_FRAME), (11, MIN_WS_FRAME), (12, 16_000_000 + HEADROOM), (20, 26_666_668 + HEADROOM)],
)
def test_the_frame_limit_carries_the_largest_import_in_base64(max_import_mb: float, expected: int) -> None:
    assert ws_max_size(max_import_mb) == expected
