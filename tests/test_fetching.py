"""The safe downloader: public addresses only (every redirect checked), one deadline, the byte limit.

Every test talks to a real HTTP server on loopback; to play a public host it names a host that does
not exist and resolves it, through the downloader's ``resolver``, to that server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from ipaddress import ip_address, ip_network

import pytest

from bot.errors import AttachmentError
from bot.fetching import Downloader, IPAddress, Resolver, refusal
from tests.support.file_server import FileServer

LOOPBACK = ip_network("127.0.0.1/32")
"""Where the test servers listen; tests that play a public host allow it as if it were public."""


def resolving(names: dict[str, str]) -> Resolver:
    """A resolver that knows only ``names`` (host → address)."""

    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        if host not in names:
            raise OSError(f"unknown host {host}")
        return [ip_address(names[host])]

    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.17.0.2", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.0.0.1", "a reserved address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("2002:7f00:1::", "a loopback address"),
        ("2002:a9fe:a9fe::", "a link-local address"),
        ("64:ff9b::a00:1", "a private address"),
    ],
)
def test_local_private_and_disguised_addresses_are_refused(address: str, kind: str) -> None:
    assert refusal(ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


async def test_a_loopback_link_is_refused_by_default_without_a_request() -> None:
    with FileServer() as files:
        url = files.add("orla.json", b"{}")
        with pytest.raises(AttachmentError) as refused:
            await Downloader().fetch(url, "orla.json", 1000)
        assert str(refused.value) == (
            "Refused to download orla.json: 127.0.0.1 is a loopback address (127.0.0.1). The bot fetches "
            "files only from public addresses; an operator can allow local and private ones with "
            "[characters] allow_private_urls."
        )
        named = Downloader(resolver=resolving({"localhost.test": "127.0.0.1"}))
        with pytest.raises(AttachmentError, match=r"localhost\.test is a loopback address"):
            await named.fetch(f"http://localhost.test:{files.port}/orla.json", "orla.json", 1000)
        assert files.requests == []
        assert await Downloader(allow_private=True).fetch(url, "orla.json", 1000) == b"{}", "when allowed"


async def test_the_checked_address_is_the_one_connected_to_with_the_name_as_host() -> None:
    with FileServer() as files:
        files.add("wren.png", b"card bytes")
        downloader = Downloader(allowed_networks=[LOOPBACK], resolver=resolving({"cdn.example": "127.0.0.1"}))
        url = f"http://cdn.example:{files.port}/wren.png"
        assert await downloader.fetch(url, "wren.png", 1000) == b"card bytes"
        assert files.hosts == [f"cdn.example:{files.port}"], "no second lookup: the name never resolves"


async def test_every_redirect_is_checked_and_one_to_loopback_refused() -> None:
    with FileServer() as files:
        files.add("wren.png", b"card bytes")
        public = f"http://cdn.example:{files.port}"
        files.redirect("moved.png", "/wren.png")
        files.redirect("to-loopback.png", f"http://127.0.0.2:{files.port}/wren.png")
        files.redirect("to-metadata.png", "http://metadata.example/latest/meta-data/")
        files.redirect("to-file.png", "file:///etc/passwd")
        downloader = Downloader(
            allowed_networks=[LOOPBACK],
            resolver=resolving({"cdn.example": "127.0.0.1", "metadata.example": "169.254.169.254"}),
        )
        assert await downloader.fetch(f"{public}/moved.png", "w.png", 1000) == b"card bytes"
        assert files.requests == ["/moved.png", "/wren.png"]

        files.requests.clear()
        with pytest.raises(AttachmentError, match=r"127\.0\.0\.2 is a loopback address .*allow_private_urls"):
            await downloader.fetch(f"{public}/to-loopback.png", "w.png", 1000)
        with pytest.raises(AttachmentError, match=r"metadata\.example is a link-local address"):
            await downloader.fetch(f"{public}/to-metadata.png", "w.png", 1000)
        with pytest.raises(
            AttachmentError, match=r"only http:// and https:// links are fetched \(this one is file\)"
        ):
            await downloader.fetch(f"{public}/to-file.png", "w.png", 1000)
        assert files.requests == ["/to-loopback.png", "/to-metadata.png", "/to-file.png"], "nothing followed"


async def test_a_redirect_loop_ends_after_a_few_hops() -> None:
    with FileServer() as files:
        url = files.redirect("loop.png", "/loop.png")
        with pytest.raises(AttachmentError, match=r"^Could not download loop.png: more than 5 redirects\.$"):
            await Downloader(allow_private=True).fetch(url, "loop.png", 1000)
        assert len(files.requests) == 6


async def test_links_that_are_not_http_are_refused() -> None:
    for url in ("file:///etc/passwd", "ftp://files.example/wren.png", "gopher://127.0.0.1:70/"):
        with pytest.raises(AttachmentError, match=r"^Refused to download x: only http:// and https://"):
            await Downloader(allow_private=True).fetch(url, "x", 1000)
    with pytest.raises(
        AttachmentError, match=r"^Could not download x: the host nowhere\.example was not found"
    ):
        await Downloader(resolver=resolving({})).fetch("http://nowhere.example/x", "x", 1000)


async def test_a_download_past_the_limit_or_gone_is_refused_naming_the_file() -> None:
    downloader = Downloader(allow_private=True)
    with FileServer() as files:
        url = files.add("huge.zip", bytes(5000))
        with pytest.raises(
            AttachmentError, match=r"^huge.zip is larger than the import limit of 1,000 bytes"
        ):
            await downloader.fetch(url, "huge.zip", 1000)
        with pytest.raises(AttachmentError, match=r"^Could not download gone.png: the server answered 404"):
            await downloader.fetch(f"{files.base_url}/gone.png", "gone.png", 1000)


@pytest.fixture
async def trickling() -> AsyncIterator[str]:
    """A server that sends its headers, then one byte a second (and would for 100 s)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(1)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/slow.png"
        server.close()


async def test_a_trickling_server_is_cut_at_the_deadline(trickling: str) -> None:
    downloader = Downloader(allow_private=True, timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(AttachmentError) as cut:
        await downloader.fetch(trickling, "slow.png", 1000)
    elapsed = time.monotonic() - started
    assert str(cut.value) == (
        "Gave up on slow.png: it did not arrive within 1.5 s ([characters] download_timeout_s)."
    )
    assert 1.4 < elapsed < 3, "one deadline for the whole download, not one per byte"
