"""The Characters pages: every character, importing one by upload, editing a pack (its routes are in
:mod:`plugins.web.character_edits`, what both share in :mod:`plugins.web.character_views`), exports,
and hiding a character in one chat.

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

import logging
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from bot.engine.packs import PACK_ID
from bot.errors import PackError
from bot.messages import ChatKey, Incoming, Role, Sender
from plugins.web.character_edits import add_edit_routes
from plugins.web.character_views import (
    EXPORTS,
    TRY_MEMBER,
    CharacterViews,
    Failure,
    TooBig,
    index_state,
    page_number,
    read_upload,
    too_big,
    upload_error,
)
from plugins.web.playground import PLATFORM, chat_key, clean_name

if TYPE_CHECKING:
    from plugins.web.app import WebConsole

log = logging.getLogger(__name__)


def add_character_routes(console: WebConsole) -> None:
    app = console.app
    prefix = console.prefix
    views = CharacterViews(console)
    add_edit_routes(views)

    @app.get("/characters", response_class=HTMLResponse)
    async def characters(request: Request) -> Response:
        session = console.session(request)
        runtime = console.live()
        return views.list_page(
            request, session, runtime, notice=views.notices.get(request.query_params.get("notice", ""))
        )

    @app.get("/characters/{pack_id}", response_class=HTMLResponse)
    async def character(request: Request, pack_id: str) -> Response:
        session = console.session(request)
        runtime = console.live()
        pack = views.known(runtime, pack_id)
        page = request.query_params.get("page", "1")
        return await views.character_page(
            request,
            session,
            runtime,
            pack,
            page=page_number(page) or 1,
            notice=views.notices.get(request.query_params.get("notice", "")),
        )

    @app.get("/characters/{pack_id}/index", response_class=HTMLResponse)
    async def index_of(request: Request, pack_id: str) -> Response:
        """The pack's index state alone, reloading itself every few seconds until it is ready (the
        pages show it in a frame, so a form being filled in is never reloaded)."""
        session = console.session(request)
        runtime = console.live()
        pack = views.known(runtime, pack_id)
        return console.page(request, "character_index.html", session, index=index_state(runtime, pack))

    # ------------------------------------------------------------------ import

    @app.post("/characters/import")
    async def import_upload(request: Request) -> Response:
        session = console.session(request)
        runtime = console.live()
        catalog = runtime.catalog
        limit = catalog.limits.max_file_bytes
        if views.declared_over(request, limit):
            message = too_big("The upload", limit)
            return views.list_page(request, session, runtime, failure=Failure("import", message), status=413)
        async with views.upload_form(request) as form:
            upload = form.get("file")
            values = {"id": str(form.get("id") or "").strip()[:32], "replace": str(form.get("replace") or "")}
            pack_id = values["id"].casefold() or None
            if not isinstance(upload, UploadFile) or not upload.filename:
                failure = Failure("import", "Choose the file to import.", values)
                return views.list_page(request, session, runtime, failure=failure, status=400)
            name = upload.filename
            if pack_id is not None and not PACK_ID.match(pack_id):
                message = f"{values['id']!r} cannot be an id: use 1-32 lowercase letters, digits, '-' or '_'."
                return views.list_page(
                    request, session, runtime, failure=Failure("import", message, values), status=400
                )
            try:
                data = await read_upload(upload, limit)
            except TooBig:
                failure = Failure("import", too_big(name, limit), values)
                return views.list_page(request, session, runtime, failure=failure, status=413)
        try:
            result = await catalog.install_upload(
                name, data, pack_id=pack_id, replace=bool(values["replace"])
            )
        except PackError as exc:
            failure = Failure("import", f"Could not import {upload_error(exc, name)}", values)
            return views.list_page(request, session, runtime, failure=failure, status=400)
        except Exception:
            log.exception("web console: import of %s failed", name)
            failure = Failure(
                "import", f"Could not import {name}: something went wrong in the bot (see its log)."
            )
            return views.list_page(request, session, runtime, failure=failure, status=500)
        pack = result.pack
        notice = views.notices.add(
            f"Imported {pack.name} as {pack.id} ({result.format}): {len(pack.scenes)} scenes, "
            f"{len(pack.lore)} lorebook entries. Live in every chat now: /switch {pack.id}",
            *result.notes,
        )
        return RedirectResponse(views.href(pack.id, notice), status_code=303)

    # ------------------------------------------------------------------ one chat, exports, try it

    @app.post("/characters/{pack_id}/chats")
    async def in_chat(request: Request, pack_id: str) -> Response:
        session, form = await console.checked(request)
        runtime = console.live()
        pack = views.known(runtime, pack_id)
        platform = str(form.get("platform") or "").strip()
        chat = str(form.get("chat") or "").strip()
        disable = form.get("action") != "enable"
        typed = {"platform": platform, "chat": chat}
        if not platform or not chat or len(platform) > 32 or len(chat) > 128:
            failure = Failure(
                "chats", "Give the chat's platform (e.g. onebot) and its id (the group number).", typed
            )
            return await views.character_page(request, session, runtime, pack, failure=failure, status=400)
        key = ChatKey(platform, chat)
        chats = runtime.router.repository.chats
        state = await chats.state(key)
        if disable and len(runtime.packs) - len(state.disabled | {pack.id}) < 1:
            failure = Failure("chats", f"That would leave {key} without any character.", typed)
            return await views.character_page(request, session, runtime, pack, failure=failure, status=400)
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
        return RedirectResponse(views.href(pack.id, views.notices.add(said), anchor="chats"), status_code=303)

    async def export(request: Request, pack_id: str, suffix: str) -> Response:
        console.session(request)
        runtime = console.live()
        pack = views.known(runtime, pack_id)
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
        pack = views.known(runtime, pack_id)
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
