"""The Characters pages' edits: settings, scenes and screenshots of a pack, each checked by the pack
loader in a copy of the pack (:mod:`plugins.web.pack_edits`), written, and read again with
:meth:`~bot.catalog.PackCatalog.reload` (``/character reload``); and the check as you type."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from bot.engine.packs import PACK_FILE, CharacterPack
from bot.errors import PackError
from plugins.web.character_views import (
    CharacterViews,
    Failure,
    TooBig,
    page_number,
    read_upload,
    settings_of,
    too_big,
)
from plugins.web.pack_edits import (
    PackEdit,
    addition_edit,
    caption_edit,
    check,
    removal_edit,
    scene_edit,
    settings_edit,
    shown,
)

if TYPE_CHECKING:
    from plugins.web.auth import Session

log = logging.getLogger(__name__)


def add_edit_routes(views: CharacterViews) -> None:
    console = views.console
    app = console.app

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
        async with views.editing:
            try:
                edit = await asyncio.to_thread(build, root)
                if not edit:
                    return RedirectResponse(
                        views.href(pack.id, views.notices.add("Nothing changed."), page, anchor), 303
                    )
                await asyncio.to_thread(check, root, edit)
                await asyncio.to_thread(edit.apply, root)
                pack = await runtime.catalog.reload(pack.id)
            except PackError as exc:
                failure = Failure(failed.form, shown(exc, root), failed.values)
                return await views.character_page(
                    request, session, runtime, pack, failure=failure, status=400
                )
        log.info("web console: %s of %r saved", anchor, pack.id)
        return RedirectResponse(views.href(pack.id, views.notices.add(done), page, anchor), status_code=303)

    @app.post("/characters/{pack_id}/settings")
    async def save_settings(request: Request, pack_id: str) -> Response:
        session, form = await console.checked(request)
        pack = views.known(console.live(), pack_id)
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
        pack = views.known(console.live(), pack_id)
        build: Callable[[Path], PackEdit]
        if form.get("what") == "settings":
            wanted = settings_of(form)[1]
            build = partial(settings_edit, wanted=wanted)
        else:
            build = partial(scene_edit, scene=str(form.get("scene") or ""), text=str(form.get("text") or ""))
        async with views.editing:
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
        pack = views.known(console.live(), pack_id)
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
        pack = views.known(runtime, pack_id)
        limits = runtime.catalog.limits
        if views.declared_over(request, limits.max_file_bytes):
            failure = Failure("add-shot", too_big("The picture", limits.max_file_bytes))
            return await views.character_page(request, session, runtime, pack, failure=failure, status=413)
        async with views.upload_form(request) as form:
            upload = form.get("image")
            caption = str(form.get("caption") or "")
            if not isinstance(upload, UploadFile) or not upload.filename:
                failure = Failure("add-shot", "Choose the picture to add.", {"caption": caption})
                return await views.character_page(
                    request, session, runtime, pack, failure=failure, status=400
                )
            try:
                data = await read_upload(upload, limits.max_file_bytes)
            except TooBig:
                failure = Failure(
                    "add-shot", too_big(upload.filename, limits.max_file_bytes), {"caption": caption}
                )
                return await views.character_page(
                    request, session, runtime, pack, failure=failure, status=413
                )
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
        pack = views.known(console.live(), pack_id)
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
