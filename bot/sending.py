"""Sending like a person, not a spam bot: one paced queue per bot account.

QQ's "risk control" limits or bans accounts that post bursts. Every reply of one account goes
through its :class:`SendQueue`, which

* paces posts: ``burst`` may go at once, then one every ``min_gap_s`` (a token bucket);
* merges text replies to the same chat that pile up behind each other into one message, each
  text once (a reply whose text the merged message already has is settled as dropped); a reply on
  its own is always posted, even when the chat's previous message said the same;
* splits a long reply at sentence ends into at most ``max_parts`` messages, or renders it as one
  picture (``long_reply = "image"``, when a font covering its characters is found);
* retries a failed post ``max_retries`` times with a growing pause, and then keeps it: the failure is
  logged with the chat and appended to ``failed_sends.jsonl``, never dropped silently;
* holds replies while the account is disconnected (:class:`~bot.errors.AccountAway`), up to
  ``away_wait_s``, and posts them once it is back (:meth:`SendQueue.resume`);
* settles each reply in the :class:`~bot.ledger.Ledger`: posted, failed, or dropped (a repeat
  within a merge), in batches beside the posting (the next post never waits for the write); a
  reply's caller is told once it is settled.

It keeps nothing per chat: what waits is in its queue, and nothing else stays once it is posted.

Its worker outlives any error of a platform's post: an unexpected exception fails that reply only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import SendingConfig
from bot.engine.replies import split_message
from bot.errors import AccountAway, SendError
from bot.messages import ChatKey, Image, Reply
from bot.pictures import find_font, render_text

if TYPE_CHECKING:
    from bot.ledger import Ledger
    from storage.deliveries import DeliveryState

log = logging.getLogger(__name__)

Post = Callable[[ChatKey, Reply], Awaitable[None]]
"""Posts one message; raises :class:`~bot.errors.SendError` when the platform refuses it."""

AWAY_CHECK_S = 5.0
"""While an account is away, how often to try again even without hearing that it is back."""


@dataclass(slots=True)
class _Item:
    key: ChatKey
    reply: Reply
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(slots=True)
class _Posted:
    """One post's replies, waiting to be settled in the ledger (and their callers told)."""

    items: list[_Item]
    kept: list[_Item]
    repeats: list[_Item]
    error: SendError | None


def parts_of(reply: Reply, settings: SendingConfig) -> list[Reply]:
    """``reply`` as the messages to post: split at sentence ends when long (at most ``max_parts``,
    the last cut short with "…" when even that is not enough); images and files go with the first,
    a voice with the last. A voice posted alone is one message, however long its text."""
    if reply.voice is not None and reply.voice_only:
        return [reply]
    chunks = split_message(reply.text, settings.part_chars) if reply.text.strip() else [reply.text]
    if len(chunks) > settings.max_parts:
        kept = chunks[: settings.max_parts]
        kept[-1] = kept[-1].rstrip("…. ") + "…"
        chunks = kept
    first, *rest = chunks
    parts = [
        replace(reply, text=first, voice=None if rest else reply.voice),
        *(Reply(chunk, quote=False, character=reply.character) for chunk in rest),
    ]
    parts[-1].voice = reply.voice
    return parts


class SendQueue:
    """One account's outgoing messages; see the module docstring. Start with :meth:`start`."""

    def __init__(
        self,
        post: Post,
        settings: SendingConfig,
        *,
        failed_log: Path | None = None,
        image_dir: Path | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.post = post
        self.settings = settings
        self.failed_log = failed_log
        self.image_dir = image_dir
        self.ledger = ledger
        self._clock = clock
        self._back = asyncio.Event()
        self._queue: deque[_Item] = deque()
        self._ready = asyncio.Event()
        self._tokens = float(settings.burst)
        self._refilled = clock()
        self._worker: asyncio.Task[None] | None = None
        self._posting: list[_Item] = []
        """Taken from the queue and being posted now."""
        self._posted: list[_Posted] = []
        """Posted (or failed), to be settled by :meth:`_settle_loop`."""
        self._settle_ready = asyncio.Event()
        self._settler: asyncio.Task[None] | None = None
        self.failed = 0

    def start(self) -> None:
        if self._worker is None:
            loop = asyncio.get_running_loop()
            self._worker = loop.create_task(self._run(), name="send queue")
            self._settler = loop.create_task(self._settle_loop(), name="send queue: ledger")

    async def aclose(self) -> None:
        """Stop at once; replies not yet posted stay pending in the ledger (posted after a restart)."""
        for task in (self._worker, self._settler):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._worker = self._settler = None
        await self._settle()
        stopped = SendError("the bot stopped before posting it; it is posted when the bot is back")
        for item in [*self._posting, *self._queue]:
            if not item.done.done():
                item.done.set_exception(stopped)
        self._posting = []
        self._queue.clear()

    def resume(self) -> None:
        """The account is connected again: post what waits for it now."""
        self._back.set()

    @property
    def pending(self) -> int:
        """Replies queued, being posted, or posted and not yet settled."""
        return len(self._waiting())

    def _waiting(self) -> list[_Item]:
        return [*(item for posted in self._posted for item in posted.items), *self._posting, *self._queue]

    def put(self, key: ChatKey, reply: Reply) -> asyncio.Future[list[None]]:
        """Queue ``reply`` for ``key``; the future is done once every part was posted, or raises the
        :class:`SendError` of a part that could not be (and was kept)."""
        self.start()
        if (
            self.settings.long_reply == "image"
            and len(reply.text) > self.settings.part_chars
            and not reply.voice_only
        ):
            reply = self._as_image(reply)
        items = [_Item(key, part) for part in parts_of(reply, self.settings)]
        self._queue.extend(items)
        self._ready.set()
        return asyncio.gather(*(item.done for item in items))

    def post_later(self, key: ChatKey, reply: Reply) -> None:
        """:meth:`put` without waiting (a failure is logged and kept by the queue all the same)."""
        self.put(key, reply).add_done_callback(_consume)

    async def send(self, key: ChatKey, reply: Reply) -> None:
        """:meth:`put` and wait until it is posted; raises :class:`SendError` when it could not be."""
        await self.put(key, reply)

    async def join(self) -> None:
        """Wait until every queued reply, and the one being posted, was posted or kept as failed."""
        while pending := self._waiting():
            # NOTE: asyncio.wait, not gather: a caller's timeout must not cancel the replies themselves.
            await asyncio.wait([item.done for item in pending])

    # ------------------------------------------------------------------ the worker

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            await self._take_token()
            items = self._posting = self._merged()
            key, reply = items[0].key, items[0].reply
            kept, repeats = _distinct(items)
            if len(items) > 1:
                reply = replace(reply, text="\n".join(item.reply.text for item in kept))
            error: SendError | None
            try:
                error = await self._post_with_retries(key, reply)
            except Exception as exc:
                # NOTE: the worker serves every later reply of the account: a bug in one post fails
                # that reply, never the queue.
                log.exception("%s: posting a reply failed unexpectedly", key)
                error = SendError(f"posting failed unexpectedly: {exc!r}")
                self._keep_failed(key, reply, str(error))
            self._posted.append(_Posted(items, kept, repeats, error))
            self._posting = []
            self._settle_ready.set()

    async def _settle_loop(self) -> None:
        """Settle what was posted, in batches: the next post never waits for the ledger's write."""
        while True:
            await self._settle_ready.wait()
            self._settle_ready.clear()
            await self._settle()

    async def _settle(self) -> None:
        """Mark every post so far in the ledger (one write per outcome), then tell their callers."""
        batch, self._posted = self._posted, []
        if not batch:
            return
        if self.ledger is not None:
            outcomes: dict[tuple[DeliveryState, str | None], list[Reply]] = {}
            for posted in batch:
                state: DeliveryState = "posted" if posted.error is None else "failed"
                reason = None if posted.error is None else str(posted.error)
                outcomes.setdefault((state, reason), []).extend(item.reply for item in posted.kept)
                repeated: DeliveryState = "dropped" if state == "posted" else state
                outcomes.setdefault((repeated, reason), []).extend(item.reply for item in posted.repeats)
            for (state, reason), replies in outcomes.items():
                await self.ledger.settle(replies, state, reason)
        for posted in batch:
            for item in posted.items:
                if item.done.done():
                    continue
                if posted.error is None:
                    item.done.set_result(None)
                else:
                    item.done.set_exception(posted.error)

    async def _take_token(self) -> None:
        gap = self.settings.min_gap_s
        while True:
            now = self._clock()
            if gap > 0:
                self._tokens = min(float(self.settings.burst), self._tokens + (now - self._refilled) / gap)
            else:
                self._tokens = float(self.settings.burst)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) * gap)

    def _merged(self) -> list[_Item]:
        """The head of the queue, with the text replies to the same chat piled up right behind it."""
        first = self._queue.popleft()
        items = [first]
        if first.reply.attached:
            return items
        length = len(first.reply.text)
        while self._queue:
            following = self._queue[0]
            if following.key != first.key or following.reply.attached:
                break
            length += len(following.reply.text) + 1
            if length > self.settings.part_chars * self.settings.max_parts:
                break
            items.append(self._queue.popleft())
        return items

    async def _post_with_retries(self, key: ChatKey, reply: Reply) -> SendError | None:
        """Post, retrying; the last error when every try failed (the reply is then kept).

        While the account is away the reply waits for it, up to ``away_wait_s``, without using up
        its retries.
        """
        pause = self.settings.retry_s
        attempt = 0
        away_since: float | None = None
        while True:
            try:
                await self.post(key, reply)
            except AccountAway as exc:
                now = self._clock()
                if away_since is None:
                    away_since = now
                    log.warning(
                        "%s: %s; holding this account's replies for up to %g s",
                        key,
                        exc,
                        self.settings.away_wait_s,
                    )
                left = self.settings.away_wait_s - (now - away_since)
                if left <= 0:
                    self._keep_failed(key, reply, f"{exc} for {self.settings.away_wait_s:g} s")
                    return exc
                await self._wait_back(min(left, AWAY_CHECK_S))
            except SendError as exc:
                if attempt == self.settings.max_retries:
                    self._keep_failed(key, reply, str(exc))
                    return exc
                log.warning("%s: posting failed (%s); retry %d in %.1f s", key, exc, attempt + 1, pause)
                await asyncio.sleep(pause)
                await self._take_token()  # a retry is one more post: it keeps to the pace too
                pause *= 2
                attempt += 1
            else:
                if away_since is not None:
                    log.info("%s: the account is back; posting again", key)
                return None

    async def _wait_back(self, seconds: float) -> None:
        """Sleep until :meth:`resume` or ``seconds``, whichever comes first."""
        self._back.clear()
        try:
            await asyncio.wait_for(self._back.wait(), seconds)
        except TimeoutError:
            pass

    def _keep_failed(self, key: ChatKey, reply: Reply, error: str) -> None:
        self.failed += 1
        log.error("%s: could not post a reply (kept in failed sends): %s", key, error)
        if self.failed_log is None:
            return
        record = {
            "at": datetime.now(UTC).isoformat(),
            "platform": key.platform,
            "chat_id": key.chat_id,
            "character": reply.character,
            "text": reply.text,
            "images": [str(image.path) for image in reply.images],
            "error": error,
        }
        try:
            self.failed_log.parent.mkdir(parents=True, exist_ok=True)
            with self.failed_log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            log.error("%s: could not keep the failed reply in %s: %s", key, self.failed_log, exc)

    # ------------------------------------------------------------------ long replies as a picture

    def _as_image(self, reply: Reply) -> Reply:
        font = find_font(reply.text, self.settings.font)
        if font is None or self.image_dir is None:
            log.warning("no font here covers this reply's characters; sending it as text parts instead")
            return reply
        self.image_dir.mkdir(parents=True, exist_ok=True)
        path = self.image_dir / f"reply-{time.time_ns()}.png"
        path.write_bytes(render_text(reply.text, font))
        return replace(reply, text="", images=[Image(path, caption=reply.text[:80])])


def _distinct(items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """``items`` split into those whose text comes first in the pile, and the repeats of them (two
    replies of one merge that say the same are posted once)."""
    kept: list[_Item] = []
    repeats: list[_Item] = []
    seen: set[str] = set()
    for item in items:
        text = item.reply.text
        if text and text in seen and len(items) > 1:
            repeats.append(item)
        else:
            seen.add(text)
            kept.append(item)
    return kept, repeats


def _consume(done: asyncio.Future[list[None]]) -> None:
    """Retrieve the outcome of a reply nobody waits for; the queue has logged a failure already."""
    if not done.cancelled():
        done.exception()


class Senders:
    """The send queue of each bot account, made on first use and closed with the runtime."""

    def __init__(self, settings: SendingConfig, data_dir: Path, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.ledger = ledger
        self._queues: dict[tuple[str, str], SendQueue] = {}

    def queue(self, platform: str, account: str, post: Post) -> SendQueue:
        """``account``'s queue; ``post`` is used when it is made (the first call for the account)."""
        key = (platform, account)
        if key not in self._queues:
            self._queues[key] = SendQueue(
                post,
                self.settings,
                failed_log=self.data_dir / "failed_sends.jsonl",
                image_dir=self.data_dir / "replies",
                ledger=self.ledger,
            )
        return self._queues[key]

    def resume(self, platform: str, account: str) -> None:
        """``account`` is connected (again): its queue posts what was waiting for it."""
        if (queue := self._queues.get((platform, account))) is not None:
            queue.resume()

    async def aclose(self) -> None:
        """Give queued replies up to ``shutdown_s`` to go out, then stop; whatever is left stays
        pending in the ledger and is posted when the bot is back (``resend_within_s``)."""
        queues = list(self._queues.values())
        try:
            async with asyncio.timeout(self.settings.shutdown_s):
                for queue in queues:
                    await queue.join()
        except TimeoutError:
            left = sum(queue.pending for queue in queues)
            log.warning(
                "stopping with %d repl(ies) not posted yet; they are posted when the bot is back", left
            )
        for queue in queues:
            await queue.aclose()
