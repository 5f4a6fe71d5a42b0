"""The Characters pages: every character, importing one by upload, editing a pack, exports, and
hiding a character in one chat.

Everything goes through what the chat commands use: an upload through
:meth:`~bot.catalog.PackCatalog.install_upload` with the catalog's import limits (``/character
import``); an edit is checked by the pack loader in a copy of the pack (:mod:`plugins.web.pack_edits`),
written, and read again with :meth:`~bot.catalog.PackCatalog.reload` (``/character reload``); exports
are :meth:`~bot.catalog.PackCatalog.export` (``/character export``), a chat's hidden characters
:meth:`~storage.chats.Chats.set_character_disabled` (``/character disable|enable``), and "try it"
sends ``/switch <id>`` through the router in a playground chat. Every route asks for the session
first (and a POST for its CSRF token) before it reads anything else.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tomllib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from bot.engine.packs import PACK_FILE, PACK_ID, CharacterPack
from bot.errors import PackError
from bot.messages import ChatKey, Incoming, Role, Sender
from plugins.web.pack_edits import (
    SETTINGS_KEYS,
    PackEdit,
    Shot,
    Value,
    addition_edit,
    caption_edit,
    check,
    lines_of,
    removal_edit,
    scene_edit,
    scene_files,
    screenshots,
    settings_edit,
    settings_values,
    shown,
)
from plugins.web.playground import PLATFORM, chat_key, clean_name, media_url

if TYPE_CHECKING:
    from bot.catalog import ExportForm
    from bot.runtime import Runtime
    from plugins.web.app import WebConsole
    from plugins.web.auth import Session

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
FORM_OVERHEAD = 64 * 1024
"""What a multipart form may carry besides its file (boundaries, the CSRF token, the other fields)."""
SCENES_PER_PAGE = 30
KEPT_NOTICES = 200
TRY_MEMBER = "Pip"
"""The made-up member who says ``/switch`` in a "try it" playground chat (the playground's default)."""
PLATFORMS = ("onebot", "discord", "console", PLATFORM)
"""Suggested in the chat form (any platform name is taken)."""
UPLOADS = ".png,.json,.charx,.zip,.jsonl,.txt"
EXPORTS: dict[str, tuple[ExportForm, str]] = {
    "zip": ("zip", "application/zip"),
    "png": ("card", "image/png"),
}


class TooBig(Exception):
    """An upload over the import limit, found while reading it."""


@dataclass(slots=True, frozen=True)
class IndexState:
    """Whether a pack's scene index is ready, as a page shows it."""

    ready: bool
    text: str


def index_state(runtime: Runtime, pack: CharacterPack) -> IndexState:
    """Indexing now (how far), waiting for it, or ready: what the catalog and the retriever know."""
    progress = runtime.catalog.indexing.get(pack.id)
    if progress is not None:
        return IndexState(False, f"indexing {progress.done}/{progress.total} scenes")
    index = runtime.retriever.get(pack.id)
    if index is None or index.content_hash != pack.content_hash:
        return IndexState(False, "waiting to be indexed")
    if index.has_dense or runtime.retriever.embedder is None:
        return IndexState(True, "ready")
    return IndexState(True, "ready (keyword search only)")


@dataclass(slots=True)
class Notices:
    """What a POST has to say to the page it redirects to (``?notice=<key>``), the newest kept."""

    kept: OrderedDict[str, tuple[str, ...]] = field(default_factory=OrderedDict)

    def add(self, *lines: str) -> str:
        key = secrets.token_urlsafe(9)
        self.kept[key] = lines
        while len(self.kept) > KEPT_NOTICES:
            self.kept.popitem(last=False)
        return key

    def get(self, key: str) -> tuple[str, ...]:
        return self.kept.get(key, ())


@dataclass(slots=True, frozen=True)
class Failure:
    """A form refused: which one (``settings``, ``scene:<name>``, ``shot:<line>``, ``add-shot``,
    ``chats``, ``import``; ``page`` when that form is no longer there), why, and what was typed in it
    (shown again)."""

    form: str
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class SceneFile:
    name: str
    text: str

    @property
    def first_line(self) -> str:
        first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
        return first if len(first) <= 70 else first[:69] + "…"


@dataclass(slots=True, frozen=True)
class PackFiles:
    """What the edit page shows of a pack, read from its files."""

    settings: dict[str, str]
    scenes: list[SceneFile]
    shots: list[Shot]


def read_pack_files(pack: CharacterPack) -> PackFiles:
    """The pack's files as they are on disk (its loaded settings when ``character.toml`` was broken by
    hand since it loaded)."""
    root = pack.root
    try:
        values = settings_values((root / PACK_FILE).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        values = {key: getattr(pack.settings, key) for key in SETTINGS_KEYS}
    settings = {key: value if isinstance(value, str) else "\n".join(value) for key, value in values.items()}
    scenes = [SceneFile(path.stem, path.read_text("utf-8", errors="replace")) for path in scene_files(root)]
    return PackFiles(settings, scenes, screenshots(root))


def page_number(text: str) -> int | None:
    """A page or line number from a form or a query (``None`` when it is not a small whole number)."""
    return int(text) if text.isdigit() and len(text) <= 6 else None


def quoted(value: object) -> str:
    """One URL path part or query value, quoted whole."""
    return quote(str(value), safe="")


def broken_packs(runtime: Runtime) -> list[str]:
    """The load errors of the packs that are still not served (a pack fixed and reloaded is)."""
    directory = runtime.config.characters_dir
    found: list[str] = []
    for error in runtime.pack_errors:
        inside = error.path.is_relative_to(directory) and error.path != directory
        if inside and error.path.relative_to(directory).parts[0] in runtime.packs:
            continue
        found.append(shown(error, directory))
    return found


def upload_error(error: PackError, name: str) -> str:
    """The error of an import with the server's temporary folder cut down to what was uploaded."""
    parts = error.path.parts
    for index, part in enumerate(parts):
        if part.startswith("upload-") and index + 1 < len(parts):
            inside = "/".join(parts[index + 2 :])
            line = f":{error.line}" if error.line is not None else ""
            return f"{f'{name}/{inside}' if inside else name}{line}: {error.reason}"
    return f"{name}: {error}"


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, read in chunks and refused (:class:`TooBig`) as soon as they pass ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(min(CHUNK, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise TooBig
        chunks.append(chunk)
    return b"".join(chunks)


def too_big(name: str, limit: int) -> str:
    return (
        f"{name} is over the import limit of {limit:,} bytes ([characters] max_import_mb); nothing was read "
        "past it."
    )


def settings_of(form: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Value]]:
    """The settings form as typed (to show it again) and as ``character.toml`` values."""
    typed = {key: str(form.get(key) or "") for key in ("persona", "aliases", "description", "greeting")}
    typed["deflection"] = str(form.get("deflection") or "")
    wanted: dict[str, Value] = {
        "persona": typed["persona"],
        "aliases": lines_of(typed["aliases"]),
        "description": " ".join(typed["description"].split()),
        "greeting": " ".join(typed["greeting"].split()),
        "deflection": lines_of(typed["deflection"]),
    }
    return typed, wanted


def add_character_routes(console: WebConsole) -> None:
    app = console.app
    prefix = console.prefix
    notices = Notices()
    editing = asyncio.Lock()

    def known(runtime: Runtime, pack_id: str) -> CharacterPack:
        pack = runtime.packs.get(pack_id)
        if pack is None:
            raise HTTPException(404, "No character with that id is loaded.")
        return pack

    def href(pack_id: str, notice: str | None = None, page: int | None = None, anchor: str = "") -> str:
        query = {key: value for key, value in (("notice", notice), ("page", page)) if value is not None}
        tail = f"?{urlencode(query)}" if query else ""
        return f"{prefix}/characters/{quoted(pack_id)}{tail}{f'#{anchor}' if anchor else ''}"

    def declared_over(request: Request, limit: int) -> bool:
        declared = request.headers.get("content-length", "")
        return declared.isdigit() and int(declared) > limit + FORM_OVERHEAD

    @asynccontextmanager
    async def upload_form(request: Request) -> AsyncIterator[dict[str, Any]]:
        """The checked form of a multipart POST; its spooled files closed at the end."""
        try:
            _session, form = await console.checked(request)
            yield form
        finally:
            await request.close()

    # ------------------------------------------------------------------ pages

    def list_page(
        request: Request,
        session: Session,
        runtime: Runtime,
        *,
        notice: tuple[str, ...] = (),
        failure: Failure | None = None,
        status: int = 200,
    ) -> Response:
        packs = sorted(runtime.packs, key=lambda pack: pack.id)
        response = console.page(
            request,
            "characters.html",
            session,
            rows=[(pack, index_state(runtime, pack)) for pack in packs],
            broken=broken_packs(runtime),
            notice=notice,
            failure=failure,
            limit_mb=f"{runtime.catalog.limits.max_file_bytes / 1_000_000:g}",
            accept=UPLOADS,
            q=quoted,
            media=media_url,
        )
        response.status_code = status
        return response

    async def character_page(
        request: Request,
        session: Session,
        runtime: Runtime,
        pack: CharacterPack,
        *,
        failure: Failure | None = None,
        page: int = 1,
        notice: tuple[str, ...] = (),
        status: int = 200,
    ) -> Response:
        files = await asyncio.to_thread(read_pack_files, pack)
        pages = max(1, -(-len(files.scenes) // SCENES_PER_PAGE))
        if failure is not None and failure.form.startswith("scene:"):
            names = [scene.name for scene in files.scenes]
            if (name := failure.form.removeprefix("scene:")) in names:
                page = names.index(name) // SCENES_PER_PAGE + 1
        page = min(max(page, 1), pages)
        first = (page - 1) * SCENES_PER_PAGE
        shown_scenes = files.scenes[first : first + SCENES_PER_PAGE]
        forms = {"settings", "scene:", "add-shot", "chats"}
        forms |= {f"scene:{scene.name}" for scene in shown_scenes} | {
            f"shot:{shot.line}" for shot in files.shots
        }
        if failure is not None and failure.form not in forms:
            failure = Failure("page", failure.message)
        response = console.page(
            request,
            "character.html",
            session,
            pack=pack,
            index=index_state(runtime, pack),
            settings=files.settings,
            scenes=shown_scenes,
            scene_count=len(files.scenes),
            page=page,
            pages=pages,
            shots=files.shots,
            failure=failure,
            notice=notice,
            platforms=PLATFORMS,
            q=quoted,
            media=media_url,
        )
        response.status_code = status
        return response

    @app.get("/characters", response_class=HTMLResponse)
    async def characters(request: Request) -> Response:
        session = console.session(request)
        runtime = console.live()
        return list_page(
            request, session, runtime, notice=notices.get(request.query_params.get("notice", ""))
        )

    @app.get("/characters/{pack_id}", response_class=HTMLResponse)
    async def character(request: Request, pack_id: str) -> Response:
        session = console.session(request)
        runtime = console.live()
        pack = known(runtime, pack_id)
        page = request.query_params.get("page", "1")
        return await character_page(
            request,
            session,
            runtime,
            pack,
            page=page_number(page) or 1,
            notice=notices.get(request.query_params.get("notice", "")),
        )

    @app.get("/characters/{pack_id}/index", response_class=HTMLResponse)
    async def index_of(request: Request, pack_id: str) -> Response:
        """The pack's index state alone, reloading itself every few seconds until it is ready (the
        pages show it in a frame, so a form being filled in is never reloaded)."""
        session = console.session(request)
        runtime = console.live()
        pack = known(runtime, pack_id)
        return console.page(request, "character_index.html", session, index=index_state(runtime, pack))

    # ------------------------------------------------------------------ import

    @app.post("/characters/import")
    async def import_upload(request: Request) -> Response:
        session = console.session(request)
        runtime = console.live()
        catalog = runtime.catalog
        limit = catalog.limits.max_file_bytes
        if declared_over(request, limit):
            message = too_big("The upload", limit)
            return list_page(request, session, runtime, failure=Failure("import", message), status=413)
        async with upload_form(request) as form:
            upload = form.get("file")
            values = {"id": str(form.get("id") or "").strip()[:32], "replace": str(form.get("replace") or "")}
            pack_id = values["id"].casefold() or None
            if not isinstance(upload, UploadFile) or not upload.filename:
                failure = Failure("import", "Choose the file to import.", values)
                return list_page(request, session, runtime, failure=failure, status=400)
            name = upload.filename
            if pack_id is not None and not PACK_ID.match(pack_id):
                message = f"{values['id']!r} cannot be an id: use 1-32 lowercase letters, digits, '-' or '_'."
                return list_page(
                    request, session, runtime, failure=Failure("import", message, values), status=400
                )
            try:
                data = await read_upload(upload, limit)
            except TooBig:
                failure = Failure("import", too_big(name, limit), values)
                return list_page(request, session, runtime, failure=failure, status=413)
        try:
            result = await catalog.install_upload(
                name, data, pack_id=pack_id, replace=bool(values["replace"])
            )
        except PackError as exc:
            failure = Failure("import", f"Could not import {upload_error(exc, name)}", values)
            return list_page(request, session, runtime, failure=failure, status=400)
        except Exception:
            log.exception("web console: import of %s failed", name)
            failure = Failure(
                "import", f"Could not import {name}: something went wrong in the bot (see its log)."
            )
            return list_page(request, session, runtime, failure=failure, status=500)
        pack = result.pack
        notice = notices.add(
            f"Imported {pack.name} as {pack.id} ({result.format}): {len(pack.scenes)} scenes, "
            f"{len(pack.lore)} lorebook entries. Live in every chat now: /switch {pack.id}",
            *result.notes,
        )
        return RedirectResponse(href(pack.id, notice), status_code=303)

    # ------------------------------------------------------------------ edits

    async def save(
        request: Request,
        session: Session,
        pack: CharacterPack,
        build: Callable[[Path], PackEdit],
        failed: Failure,
        done: str,
        anchor: str,
        page: int | None = None,
    ) -> Response:
        """Build the edit from the pack's files, check it in a copy, write it, and reload the pack as
        ``/character reload`` does; a refused edit shows the page again with the loader's words."""
        runtime = console.live()
        root = pack.root
        async with editing:
            try:
                edit = await asyncio.to_thread(build, root)
                if not edit:
                    return RedirectResponse(href(pack.id, notices.add("Nothing changed."), page, anchor), 303)
                await asyncio.to_thread(check, root, edit)
                await asyncio.to_thread(edit.apply, root)
                pack = await runtime.catalog.reload(pack.id)
            except PackError as exc:
                failure = Failure(failed.form, shown(exc, root), failed.values)
                return await character_page(request, session, runtime, pack, failure=failure, status=400)
        log.info("web console: %s of %r saved", anchor, pack.id)
        return RedirectResponse(href(pack.id, notices.add(done), page, anchor), status_code=303)

    @app.post("/characters/{pack_id}/settings")
    async def save_settings(request: Request, pack_id: str) -> Response:
        session, form = await console.checked(request)
        pack = known(console.live(), pack_id)
        typed, wanted = settings_of(form)
        return await save(
            request,
            session,
            pack,
            lambda root: settings_edit(root, wanted),
            Failure("settings", "", typed),
            f"Saved {pack.name}'s {PACK_FILE} and reloaded the pack.",
            "settings",
        )

    @app.post("/characters/{pack_id}/check")
    async def check_as_typed(request: Request, pack_id: str) -> Response:
        """What the pack loader would say of a settings or scene form as it stands, nothing written:
        ``{"problem": "scenes/002.txt:3: …"}``, or ``null`` when the pack would load."""
        _session, form = await console.checked(request)
        pack = known(console.live(), pack_id)
        build: Callable[[Path], PackEdit]
        if form.get("what") == "settings":
            wanted = settings_of(form)[1]
            build = partial(settings_edit, wanted=wanted)
        else:
            build = partial(scene_edit, scene=str(form.get("scene") or ""), text=str(form.get("text") or ""))
        async with editing:
            try:
                edit = await asyncio.to_thread(build, pack.root)
                if edit:
                    await asyncio.to_thread(check, pack.root, edit)
            except PackError as exc:
                return JSONResponse({"problem": shown(exc, pack.root)})
        return JSONResponse({"problem": None})

    @app.post("/characters/{pack_id}/scenes")
    async def save_scene(request: Request, pack_id: str) -> Response:
        session, form = await console.checked(request)
        pack = known(console.live(), pack_id)
        scene = str(form.get("scene") or "")
        text = str(form.get("text") or "")
        delete = form.get("action") == "delete"
        page = str(form.get("page") or "")
        done = (
            f"Deleted scene {scene}." if delete else (f"Saved scene {scene}." if scene else "Added a scene.")
        )
        return await save(
            request,
            session,
            pack,
            lambda root: scene_edit(root, scene, text, delete=delete),
            Failure(f"scene:{scene}", "", {"text": text}),
            done,
            "scenes",
            page_number(page),
        )

    @app.post("/characters/{pack_id}/screenshots")
    async def add_screenshot(request: Request, pack_id: str) -> Response:
        session = console.session(request)
        runtime = console.live()
        pack = known(runtime, pack_id)
        limits = runtime.catalog.limits
        if declared_over(request, limits.max_file_bytes):
            failure = Failure("add-shot", too_big("The picture", limits.max_file_bytes))
            return await character_page(request, session, runtime, pack, failure=failure, status=413)
        async with upload_form(request) as form:
            upload = form.get("image")
            caption = str(form.get("caption") or "")
            if not isinstance(upload, UploadFile) or not upload.filename:
                failure = Failure("add-shot", "Choose the picture to add.", {"caption": caption})
                return await character_page(request, session, runtime, pack, failure=failure, status=400)
            try:
                data = await read_upload(upload, limits.max_file_bytes)
            except TooBig:
                failure = Failure(
                    "add-shot", too_big(upload.filename, limits.max_file_bytes), {"caption": caption}
                )
                return await character_page(request, session, runtime, pack, failure=failure, status=413)
        return await save(
            request,
            session,
            pack,
            lambda root: addition_edit(root, data, caption, limits),
            Failure("add-shot", "", {"caption": caption}),
            "Added the screenshot.",
            "screenshots",
        )

    @app.post("/characters/{pack_id}/screenshots/edit")
    async def edit_screenshot(request: Request, pack_id: str) -> Response:
        session, form = await console.checked(request)
        pack = known(console.live(), pack_id)
        line_text = str(form.get("line") or "")
        line = page_number(line_text) or 0
        image = str(form.get("image") or "")
        caption = str(form.get("caption") or "")
        avatar = pack.settings.avatar
        remove = form.get("action") == "remove"
        return await save(
            request,
            session,
            pack,
            lambda root: (
                removal_edit(root, line, image, avatar)
                if remove
                else caption_edit(root, line, image, caption)
            ),
            Failure(f"shot:{line}", "", {"caption": caption}),
            f"Removed the screenshot {image}." if remove else f"Saved the caption of {image}.",
            "screenshots",
        )

    # ------------------------------------------------------------------ one chat, exports, try it

    @app.post("/characters/{pack_id}/chats")
    async def in_chat(request: Request, pack_id: str) -> Response:
        session, form = await console.checked(request)
        runtime = console.live()
        pack = known(runtime, pack_id)
        platform = str(form.get("platform") or "").strip()
        chat = str(form.get("chat") or "").strip()
        disable = form.get("action") != "enable"
        typed = {"platform": platform, "chat": chat}
        if not platform or not chat or len(platform) > 32 or len(chat) > 128:
            failure = Failure(
                "chats", "Give the chat's platform (e.g. onebot) and its id (the group number).", typed
            )
            return await character_page(request, session, runtime, pack, failure=failure, status=400)
        key = ChatKey(platform, chat)
        chats = runtime.router.repository.chats
        state = await chats.state(key)
        if disable and len(runtime.packs) - len(state.disabled | {pack.id}) < 1:
            failure = Failure("chats", f"That would leave {key} without any character.", typed)
            return await character_page(request, session, runtime, pack, failure=failure, status=400)
        changed = await chats.set_character_disabled(key, pack.id, disable)
        if disable:
            said = (
                f"{pack.name} is disabled in {key}."
                if changed
                else f"{pack.name} already was disabled in {key}."
            )
            if runtime.router.gatherer.active_pack(state).id == pack.id:
                said += " It was the active character there; the chat falls back to the default."
        else:
            said = (
                f"{pack.name} is enabled in {key}."
                if changed
                else f"{pack.name} already was enabled in {key}."
            )
        return RedirectResponse(href(pack.id, notices.add(said), anchor="chats"), status_code=303)

    async def export(request: Request, pack_id: str, suffix: str) -> Response:
        console.session(request)
        runtime = console.live()
        pack = known(runtime, pack_id)
        form, media_type = EXPORTS[suffix]
        try:
            file = await runtime.catalog.export(pack.id, form)
        except PackError as exc:
            raise HTTPException(404, f"Could not export {pack.name}: {exc.reason}") from None
        return FileResponse(file.path, media_type=media_type, filename=file.name)

    @app.get("/characters/{pack_id}/export.zip")
    async def export_zip(request: Request, pack_id: str) -> Response:
        return await export(request, pack_id, "zip")

    @app.get("/characters/{pack_id}/export.png")
    async def export_card(request: Request, pack_id: str) -> Response:
        return await export(request, pack_id, "png")

    @app.post("/characters/{pack_id}/try")
    async def try_it(request: Request, pack_id: str) -> Response:
        """Switch the playground chat ``try-<id>`` to the character (``/switch`` through the router,
        as a member would) and open it."""
        await console.checked(request)
        runtime = console.live()
        pack = known(runtime, pack_id)
        chat = clean_name(f"try-{pack.id}", "playground")
        key = chat_key("group", chat, TRY_MEMBER)
        incoming = Incoming(
            PLATFORM,
            "group",
            key.chat_id,
            Sender(f"web-{TRY_MEMBER}", TRY_MEMBER, Role.OWNER),
            f"/switch {pack.id}",
            to_me=True,
            message_id=uuid.uuid4().hex,
        )
        for reply in await runtime.router.handle(incoming):
            # The playground posts what is announced in its chats (and settles it).
            if not await runtime.outbox.announce(key, reply):
                await runtime.ledger.settle([reply], "dropped")
        return RedirectResponse(f"{prefix}/play?{urlencode({'chat': chat})}", status_code=303)
