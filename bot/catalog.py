"""The packs the bot serves, changed while it runs: import, create, reload, remove, export.

Every change goes to disk first, through the importers' whole-or-nothing install, and then into the
shared :class:`~bot.engine.packs.PackRegistry`, so every chat sees it with its next message and no
restart is needed. A new or changed pack answers at once with keyword retrieval; its scene
embeddings are computed in the background, and the chat that asked hears how far that got
("indexing 120/400 scenes") and when it is done.

Several bot processes on one PostgreSQL database share the characters folder; each change is
recorded in the database and :class:`CatalogSync` makes the other processes follow it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bot.background import Background
from bot.engine.packs import PACK_ID, CharacterPack, load_pack
from bot.engine.registry import PackRegistry
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.errors import BotError, PackError
from bot.importers import (
    ImportLimits,
    ImportResult,
    PackDraft,
    export_card,
    export_zip,
    import_pack,
    install_draft,
    remove_pack,
)
from bot.importers.limits import DEFAULT_LIMITS
from bot.messages import ChatKey, File, Reply
from bot.outbox import Outbox
from storage.chats import CHAT_CHANGED

if TYPE_CHECKING:
    from storage import Repository
    from storage.catalog import CatalogAction

log = logging.getLogger(__name__)

ExportForm = Literal["zip", "card"]
_UNSAFE_FILE_NAME = re.compile(r"[^\w.\-]+")


def safe_file_name(name: str, fallback: str = "upload") -> str:
    """A chat upload's name made safe as one file name, keeping its suffix (formats are told by it)."""
    cleaned = _UNSAFE_FILE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip("._")[-100:]
    return cleaned or fallback


@dataclass(slots=True)
class IndexProgress:
    """How far the background indexing of one pack is."""

    done: int = 0
    total: int = 0


class PackCatalog:
    """Changes the served packs on disk and in the registry, and indexes them in the background.

    Changes are made one at a time. ``progress_every_s`` is the least time between two progress
    messages in a chat, so a big pack reports a few times, not once per batch.
    """

    def __init__(
        self,
        directory: Path,
        packs: PackRegistry,
        retriever: Retriever,
        screenshots: ScreenshotMatcher,
        *,
        outbox: Outbox,
        background: Background,
        work_dir: Path,
        limits: ImportLimits = DEFAULT_LIMITS,
        progress_every_s: float = 10.0,
    ) -> None:
        self.directory = directory
        self.packs = packs
        self.retriever = retriever
        self.screenshots = screenshots
        self.outbox = outbox
        self.background = background
        self.work_dir = work_dir
        self.limits = limits
        self.progress_every_s = progress_every_s
        self.listener: Callable[[str, CatalogAction], Awaitable[None]] | None = None
        """Told of each change made here (:class:`CatalogSync` records it for other processes)."""
        self.indexing: dict[str, IndexProgress] = {}
        """The packs being indexed now, and how far each is (the web console shows it)."""
        self._changing = asyncio.Lock()
        self._held: dict[ChatKey, asyncio.Event] = {}

    @asynccontextmanager
    async def reports_held(self, key: ChatKey) -> AsyncIterator[None]:
        """Hold the indexing reports for ``key`` until the block ends, so that the chat hears that a
        character was imported before it hears how far its indexing got."""
        released = self._held[key] = asyncio.Event()
        try:
            yield
        finally:
            released.set()
            if self._held.get(key) is released:
                del self._held[key]

    async def _report(self, key: ChatKey, text: str) -> None:
        if (held := self._held.get(key)) is not None:
            await held.wait()
        await self.outbox.announce(key, Reply(text, quote=False))

    # ------------------------------------------------------------------ changes

    async def install(
        self,
        source: Path,
        *,
        pack_id: str | None = None,
        replace: bool = False,
        report_to: ChatKey | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> ImportResult:
        """Import ``source`` (any importable format) and serve it at once; index it in the background."""
        async with self._changing:
            result = await asyncio.to_thread(
                import_pack,
                source,
                self.directory,
                pack_id=pack_id,
                replace=replace,
                limits=self.limits,
                progress=progress,
            )
            self._serve(result.pack, report_to)
            await self._changed(result.pack.id, "serve")
            return result

    async def install_upload(
        self,
        name: str,
        data: bytes,
        *,
        pack_id: str | None = None,
        replace: bool = False,
        report_to: ChatKey | None = None,
    ) -> ImportResult:
        """:meth:`install` a file sent in a chat, written aside under its own (cleaned) name first."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        upload = Path(tempfile.mkdtemp(prefix="upload-", dir=self.work_dir))
        try:
            source = upload / safe_file_name(name)
            await asyncio.to_thread(source.write_bytes, data)
            return await self.install(source, pack_id=pack_id, replace=replace, report_to=report_to)
        finally:
            await asyncio.to_thread(shutil.rmtree, upload, True)

    async def create(
        self, draft: PackDraft, pack_id: str, *, report_to: ChatKey | None = None
    ) -> CharacterPack:
        """Write a pack made in the chat (``/character create``) and serve it at once."""
        async with self._changing:
            self._check_new_name(draft.name)
            pack = await asyncio.to_thread(install_draft, draft, self.directory, pack_id)
            self._serve(pack, report_to)
            await self._changed(pack.id, "serve")
            return pack

    async def reload(self, pack_id: str, *, report_to: ChatKey | None = None) -> CharacterPack:
        """Read ``characters/<pack_id>`` again (edited by hand, or newly copied there) and serve it."""
        async with self._changing:
            root = self.directory / pack_id
            if not PACK_ID.match(pack_id) or not root.is_dir():
                raise PackError(root, f"no pack folder {pack_id!r} in {self.directory}")
            pack = await asyncio.to_thread(load_pack, root)
            self._serve(pack, report_to)
            await self._changed(pack.id, "serve")
            return pack

    async def remove(self, pack_id: str) -> CharacterPack:
        """Delete a pack from disk and stop serving it; the chats' memories of it stay in the database."""
        async with self._changing:
            pack = self.packs.get(pack_id)
            if pack is None:
                raise PackError(self.directory / pack_id, f"no character with id {pack_id!r} is loaded")
            if len(self.packs) == 1:
                raise PackError(
                    self.directory / pack_id, "it is the only character: import another one first"
                )
            await asyncio.to_thread(remove_pack, self.directory, pack_id)
            self._drop(pack_id)
            await self._changed(pack_id, "remove")
            return pack

    async def follow(self, pack_id: str, action: CatalogAction) -> None:
        """Apply a change another process made to the shared characters folder."""
        async with self._changing:
            if action == "remove":
                if self.packs.get(pack_id) is not None and len(self.packs) > 1:
                    self._drop(pack_id)
                return
            pack = await asyncio.to_thread(load_pack, self.directory / pack_id)
            self._serve(pack, None)

    def _drop(self, pack_id: str) -> None:
        self.packs.remove(pack_id)
        self.retriever.forget(pack_id)
        self.screenshots.forget(pack_id)
        log.info("character %r removed", pack_id)

    async def _changed(self, pack_id: str, action: CatalogAction) -> None:
        if self.listener is None:
            return
        try:
            await self.listener(pack_id, action)
        except Exception:
            # The change is made here already; only its news to other processes failed.
            log.exception("other bot processes will not hear that %r changed", pack_id)

    async def export(self, pack_id: str, form: ExportForm) -> File:
        """Write the pack as a zip (our format) or a Character Card V3 PNG, for posting in the chat."""
        pack = self.packs.get(pack_id)
        if pack is None:
            raise PackError(self.directory / pack_id, f"no character with id {pack_id!r} is loaded")
        if form == "zip":
            data, name = await asyncio.to_thread(export_zip, pack), f"{pack.id}.zip"
        else:
            data, name = await asyncio.to_thread(export_card, pack), f"{pack.id}.card.png"
        exports = self.work_dir / "exports"
        exports.mkdir(parents=True, exist_ok=True)
        path = exports / name
        await asyncio.to_thread(path.write_bytes, data)
        return File(path, name)

    def _check_new_name(self, name: str) -> None:
        """Refuse a new character whose name is already another's name or alias (calls would clash)."""
        folded = name.casefold()
        for pack in self.packs:
            if folded in (other.casefold() for other in pack.names):
                raise PackError(
                    self.directory, f"{name!r} already calls {pack.name} ({pack.id}); pick another name"
                )

    def _serve(self, pack: CharacterPack, report_to: ChatKey | None) -> None:
        self.packs.add(pack)
        log.info("character %r is live (%d scenes)", pack.id, len(pack.scenes))
        self.background.start(self.index(pack, report_to=report_to), f"indexing {pack.id}")

    # ------------------------------------------------------------------ indexing

    async def index_all(self) -> None:
        """Index every served pack (start-up); until then each answers with keyword retrieval."""
        for pack in list(self.packs):
            await self.index(pack)
        log.info("scene index ready for %d character(s)", len(self.packs))

    async def index(self, pack: CharacterPack, *, report_to: ChatKey | None = None) -> None:
        """Embed the pack's scenes (or load them from the cache), telling ``report_to`` how it goes."""
        loop = asyncio.get_running_loop()
        progress = IndexProgress(total=len(pack.scenes))

        def heard(done: int, total: int) -> None:
            loop.call_soon_threadsafe(_update, progress, done, total)

        self.indexing[pack.id] = progress
        try:
            indexing = asyncio.ensure_future(self.retriever.index(pack, heard))
            while not indexing.done():
                await asyncio.wait({indexing}, timeout=self.progress_every_s)
                if not indexing.done() and report_to is not None and progress.done:
                    done = f"{progress.done}/{progress.total}"
                    await self._report(report_to, f"{pack.name}: indexing {done} scenes")
            index = indexing.result()
            await self.screenshots.index(pack)
        finally:
            if self.indexing.get(pack.id) is progress:
                del self.indexing[pack.id]
        if report_to is None:
            return
        how = "ready" if index.has_dense or self.retriever.embedder is None else "ready (keyword search only)"
        await self._report(report_to, f"{pack.name}: indexed {len(index)}/{len(pack.scenes)} scenes, {how}.")


def _update(progress: IndexProgress, done: int, total: int) -> None:
    progress.done, progress.total = done, total


class CatalogSync:
    """Keeps this process's characters in step with the other processes on a shared database.

    Changes made here are recorded (``catalog_changes``); every ``interval_s`` the process reads
    the changes made elsewhere and reloads or drops those packs, so an import in one process is
    served by all of them within about a second.
    """

    def __init__(
        self, catalog: PackCatalog, repository: Repository, *, origin: str, interval_s: float
    ) -> None:
        self.catalog = catalog
        self.repository = repository
        self.origin = origin
        self.interval_s = interval_s
        self._seen = 0

    async def start(self, background: Background) -> None:
        """Follow changes from now on (the packs on disk are already loaded)."""
        self._seen = await self.repository.catalog.last()
        self.catalog.listener = self.record
        background.start(self._run(), "following other processes' character changes")

    async def record(self, pack_id: str, action: CatalogAction) -> None:
        await self.repository.catalog.record(pack_id, action, origin=self.origin)

    async def poll(self) -> int:
        """Apply the changes other processes made since the last poll (a chat's changed settings
        included: its cached state is dropped); how many there were."""
        applied = 0
        for change_id, pack_id, action, origin in await self.repository.catalog.after(self._seen):
            self._seen = change_id
            if action == CHAT_CHANGED:
                self.repository.chats.forget_cached(pack_id)
                continue
            if origin == self.origin:
                continue
            try:
                await self.catalog.follow(pack_id, action)
            except BotError as exc:
                log.warning("cannot follow the change of %r made by %s: %s", pack_id, origin, exc)
            else:
                applied += 1
                log.info("character %r: %s (changed by %s)", pack_id, action, origin)
        return applied

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except Exception:
                log.exception("reading other processes' character changes failed; trying again")
