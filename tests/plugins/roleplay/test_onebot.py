"""Files sent through OneBot: downloaded from public links, read from ``get_file``'s answer (base64, or a
path inside ``[platforms.onebot] file_dir``), never past the limit."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.errors import AttachmentError
from bot.fetching import Downloader
from plugins.roleplay.files import DEFAULT_ACCESS, FileAccess, _from_file_info
from tests.support.file_server import FileServer

LOCAL_LINKS = FileAccess(Downloader(allow_private=True))
"""Links to the loopback test server, as ``[characters] allow_private_urls = true`` allows them."""


async def test_a_link_is_downloaded_and_one_to_this_machine_refused_by_default() -> None:
    with FileServer() as files:
        url = files.add("wren.png", b"card bytes")
        assert await _from_file_info({"url": url}, "wren.png", 1000, LOCAL_LINKS) == b"card bytes"
        with pytest.raises(AttachmentError) as refused:
            await _from_file_info({"url": url}, "wren.png", 1000, DEFAULT_ACCESS)
        why = str(refused.value)
        assert why.startswith("Refused to download wren.png: 127.0.0.1 is a loopback address")
        assert why.endswith("allow local and private ones with [characters] allow_private_urls.")
        assert files.requests == ["/wren.png"], "the refused link was never requested"


async def test_get_file_answers_in_base64_a_shared_path_or_a_url(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"from base64").decode()
    assert await _from_file_info({"base64": encoded}, "a.png", 100, DEFAULT_ACCESS) == b"from base64"

    shared = FileAccess(LOCAL_LINKS.downloader, tmp_path)
    local = tmp_path / "b.png"
    local.write_bytes(b"from the disk")
    assert await _from_file_info({"file": str(local)}, "b.png", 100, shared) == b"from the disk"
    assert await _from_file_info({"file": local.as_uri()}, "b.png", 100, shared) == b"from the disk"
    assert await _from_file_info({"file": "b.png"}, "b.png", 100, shared) == b"from the disk", (
        "a relative path is taken from the shared folder"
    )

    with FileServer() as files:
        url = files.add("c.png", b"from the url")
        answer = {"file": str(tmp_path / "not-here.png"), "url": url}
        assert await _from_file_info(answer, "c.png", 100, shared) == b"from the url", (
            "a path not on this machine falls to the URL"
        )
        answer = {"file": "/etc/passwd", "url": url}
        assert await _from_file_info(answer, "c.png", 100, shared) == b"from the url", (
            "and so does a path the bot may not read"
        )

    with pytest.raises(AttachmentError, match="larger than the import limit"):
        await _from_file_info({"file": str(local)}, "b.png", 5, shared)
    with pytest.raises(AttachmentError, match=r"gave no way to fetch d\.png"):
        await _from_file_info({"file_name": "d.png"}, "d.png", 100, shared)


async def test_a_path_outside_file_dir_is_refused_and_without_file_dir_none_is_read(tmp_path: Path) -> None:
    shared_dir = tmp_path / "napcat"
    shared_dir.mkdir()
    (shared_dir / "card.png").write_bytes(b"card")
    secret = tmp_path / "bot.toml"
    secret.write_text("api_key = 'sk-...'")
    (shared_dir / "link.png").symlink_to(secret)
    shared = FileAccess(shared_dir=shared_dir)

    outside = r"^Refused to read x: the OneBot implementation put it outside \[platforms.onebot\] file_dir"
    for path in ("/etc/passwd", f"{shared_dir}/../bot.toml", str(shared_dir / "link.png"), "../bot.toml"):
        with pytest.raises(AttachmentError, match=outside):
            await _from_file_info({"file": path}, "x", 10_000, shared)
    (shared_dir / "folder").mkdir()
    os.mkfifo(shared_dir / "pipe")
    for path in ("folder", "pipe"):
        with pytest.raises(AttachmentError, match=r"named x at a path that is no file"):
            await _from_file_info({"file": path}, "x", 10_000, shared)
    assert await _from_file_info({"file": str(shared_dir / "card.png")}, "x", 100, shared) == b"card"

    with pytest.raises(AttachmentError) as refused:
        await _from_file_info({"file": str(shared_dir / "card.png")}, "card.png", 100, DEFAULT_ACCESS)
    assert str(refused.value) == (
        "The OneBot implementation gave card.png only as a path on disk, and the bot reads none unless "
        "[platforms.onebot] file_dir names the folder it shares with the implementation (or turn on "
        "base64 for get_file in the implementation's settings)."
    )


def test_the_file_settings_come_from_bot_toml(tmp_path: Path) -> None:
    config = parse_config(
        {
            "characters": {
                "allow_private_urls": True,
                "download_timeout_s": 5,
                "allowed_networks": ["10.0.0.0/8"],
            },
            "platforms": {"onebot": {"file_dir": "napcat/files"}},
        },
        source=tmp_path / "bot.toml",
    )
    access = FileAccess.from_config(config)
    assert access.shared_dir == tmp_path.resolve() / "napcat" / "files"
    assert (access.downloader.allow_private, access.downloader.timeout_s) == (True, 5)
    assert [str(network) for network in access.downloader.allowed_networks] == ["10.0.0.0/8"]
    defaults = FileAccess.from_config(parse_config({}, source=tmp_path / "bot.toml"))
    assert defaults.shared_dir is None
    assert (defaults.downloader.allow_private, defaults.downloader.timeout_s) == (False, 60)
