"""Files sent through OneBot: downloaded from their URL or taken from ``get_file``, never past the limit."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.errors import AttachmentError
from plugins.roleplay.onebot import _from_file_info, download
from tests.support.file_server import FileServer


async def test_a_file_is_downloaded_from_its_url() -> None:
    with FileServer() as files:
        url = files.add("wren.png", b"card bytes")
        assert await download(url, "wren.png", 1000) == b"card bytes"


async def test_a_download_past_the_limit_or_gone_is_refused_naming_the_file() -> None:
    with FileServer() as files:
        url = files.add("huge.zip", bytes(5000))
        with pytest.raises(
            AttachmentError, match=r"^huge.zip is larger than the import limit of 1,000 bytes"
        ):
            await download(url, "huge.zip", 1000)
        with pytest.raises(AttachmentError, match=r"^Could not download gone.png: .*404"):
            await download(f"{files.base_url}/gone.png", "gone.png", 1000)


async def test_get_file_answers_in_base64_a_local_path_or_a_url(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"from base64").decode()
    assert await _from_file_info({"base64": encoded}, "a.png", 100) == b"from base64"

    local = tmp_path / "b.png"
    local.write_bytes(b"from the disk")
    assert await _from_file_info({"file": str(local)}, "b.png", 100) == b"from the disk"

    with FileServer() as files:
        url = files.add("c.png", b"from the url")
        answer = {"file": "/not/on/this/machine.png", "url": url}
        assert await _from_file_info(answer, "c.png", 100) == b"from the url", (
            "a path elsewhere falls to the URL"
        )

    with pytest.raises(AttachmentError, match="larger than the import limit"):
        await _from_file_info({"file": str(local)}, "b.png", 5)
    with pytest.raises(AttachmentError, match=r"gave no way to fetch d\.png"):
        await _from_file_info({"file_name": "d.png"}, "d.png", 100)
