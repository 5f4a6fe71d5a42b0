"""Downloading a file a chat pointed at, without letting the link reach the bot's own network.

A link in a chat (or a redirect it leads to) may name ``127.0.0.1``, a router's admin page or a cloud
metadata address; fetched by the bot, its answer could come back to the chat as a "character". So
:class:`Downloader` resolves the host itself, refuses unless every address is public (see
:func:`refusal`), connects to the address it checked (never resolving the name a second time, so DNS
cannot be changed in between), follows redirects by hand and checks every hop the same way. The whole
download, redirects and a server trickling one byte at a time included, has one deadline.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import httpx

from bot.errors import AttachmentError

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""The addresses of a host name (and port); raises :class:`OSError` when there are none."""

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SCHEMES = frozenset({"http", "https"})
_SHARED = ip_network("100.64.0.0/10")
"""Carrier-grade NAT (RFC 6598): not public, though Python counts it as neither private nor global."""
_NAT64 = ip_network("64:ff9b::/96")
ALLOW_KEY = "[characters] allow_private_urls"
TIMEOUT_KEY = "[characters] download_timeout_s"


def refusal(address: IPAddress) -> str | None:
    """Why the bot must not connect to ``address`` (``"a loopback address"``), or ``None`` when it is
    public. IPv6 forms that carry an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64) are judged by it."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return refusal(embedded)
    kinds = (
        ("an unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a shared (carrier-grade NAT) address", address in _SHARED),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
        ("a site-local address", isinstance(address, IPv6Address) and address.is_site_local),
        ("not a public address", not address.is_global),
    )
    return next((kind for kind, matches in kinds if matches), None)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, through the event loop's resolver (no blocking call)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_rest, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


class Downloader:
    """Fetches ``http``/``https`` links into memory, refusing local and private addresses.

    ``allow_private`` turns the address check off (``[characters] allow_private_urls``); addresses in
    ``allowed_networks`` pass it even so. ``timeout_s`` is the deadline of a whole download.
    ``resolver`` replaces DNS (tests name hosts that do not exist).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allowed_networks: Iterable[IPNetwork] = (),
        timeout_s: float = 60.0,
        max_redirects: int = MAX_REDIRECTS,
        resolver: Resolver = resolve,
    ) -> None:
        self.allow_private = allow_private
        self.allowed_networks = tuple(allowed_networks)
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.resolver = resolver

    async def fetch(self, url: str, name: str, max_bytes: int) -> bytes:
        """The file at ``url`` (``name`` is how messages call it), refused as soon as it passes
        ``max_bytes``; every problem is an :class:`AttachmentError` written for the chat."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url, name, max_bytes)
        except TimeoutError:
            raise AttachmentError(
                f"Gave up on {name}: it did not arrive within {self.timeout_s:g} s ({TIMEOUT_KEY})."
            ) from None

    async def _fetch(self, url: str, name: str, max_bytes: int) -> bytes:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            raise AttachmentError(f"Cannot download {name}: {url!r} is not a link.") from None
        # NOTE: the environment's proxy settings are ignored: a proxy would connect to what the
        # check never saw.
        client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, trust_env=False)
        async with client:
            for _hop in range(self.max_redirects + 1):
                addresses = await self._vetted(target, name)
                response = await self._open(client, target, addresses, name)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        target = _redirected(target, location, name)
                        continue
                    if not response.is_success:
                        raise AttachmentError(
                            f"Could not download {name}: the server answered "
                            f"{response.status_code} {response.reason_phrase}."
                        )
                    return await _read_body(response, name, max_bytes)
                finally:
                    await response.aclose()
        raise AttachmentError(f"Could not download {name}: more than {self.max_redirects} redirects.")

    async def _vetted(self, url: httpx.URL, name: str) -> list[IPAddress]:
        """The addresses of ``url``'s host, once every one of them is allowed."""
        if url.scheme not in _SCHEMES:
            raise AttachmentError(
                f"Refused to download {name}: only http:// and https:// links are fetched "
                f"(this one is {url.scheme or 'not a link'})."
            )
        host = url.host
        if not host:
            raise AttachmentError(f"Cannot download {name}: the link names no host.")
        try:
            addresses = [ip_address(host)]
        except ValueError:
            try:
                addresses = list(await self.resolver(host, url.port or _default_port(url)))
            except OSError:
                raise AttachmentError(f"Could not download {name}: the host {host} was not found.") from None
        if not addresses:
            raise AttachmentError(f"Could not download {name}: the host {host} was not found.")
        for address in addresses:
            why = self._refusal(address)
            if why is not None:
                raise AttachmentError(
                    f"Refused to download {name}: {host} is {why} ({address}). The bot fetches files only "
                    f"from public addresses; an operator can allow local and private ones with {ALLOW_KEY}."
                )
        return addresses

    def _refusal(self, address: IPAddress) -> str | None:
        if self.allow_private or any(address in network for network in self.allowed_networks):
            return None
        return refusal(address)

    async def _open(
        self, client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress], name: str
    ) -> httpx.Response:
        """A streamed response from the first of ``addresses`` that accepts the connection.

        The request goes to the address itself; the host name travels in the ``Host`` header and, for
        https, in TLS's SNI, so the certificate is still checked against the name."""
        failure: httpx.HTTPError | None = None
        for address in addresses:
            request = client.build_request(
                "GET",
                url.copy_with(host=str(address)),
                headers={"Host": url.netloc.decode("ascii")},
                extensions={"sni_hostname": url.host} if url.scheme == "https" else None,
            )
            try:
                return await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
            except httpx.HTTPError as exc:
                raise AttachmentError(f"Could not download {name}: {_reason(exc)}") from None
        raise AttachmentError(f"Could not download {name}: {_reason(failure)}")


async def _read_body(response: httpx.Response, name: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_big(name, max_bytes)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > max_bytes:
                raise too_big(name, max_bytes)
            chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise AttachmentError(f"Could not download {name}: {_reason(exc)}") from None
    return b"".join(chunks)


def _redirected(url: httpx.URL, location: str, name: str) -> httpx.URL:
    try:
        return url.join(location)
    except httpx.InvalidURL:
        raise AttachmentError(f"Could not download {name}: the server redirected to a broken link.") from None


def too_big(name: str, max_bytes: int) -> AttachmentError:
    return AttachmentError(f"{name} is larger than the import limit of {max_bytes:,} bytes.")


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _reason(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return text or type(exc).__name__
