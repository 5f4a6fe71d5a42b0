"""What the Characters pages share: the helpers of uploads and pack files, and
:class:`CharacterViews`, which finds a character, links to it, and renders its pages (for
:mod:`plugins.web.characters` and :mod:`plugins.web.character_edits`)."""

from __future__ import annotations

import asyncio
import secrets
import tomllib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from bot.engine.packs import PACK_FILE, CharacterPack
from bot.errors import PackError
from plugins.web.pack_edits import (
    SETTINGS_KEYS,
    Shot,
    Value,
    lines_of,
    scene_files,
    screenshots,
    settings_values,
    shown,
)
from plugins.web.playground import PLATFORM, media_url

if TYPE_CHECKING:
    from bot.catalog import ExportForm
    from bot.runtime import Runtime
    from plugins.web.app import WebConsole
    from plugins.web.auth import Session

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


class CharacterViews:
    """The Characters pages' shared parts: the console, the notices a POST leaves for the page it
    redirects to, and the lock that lets one pack edit run at a time."""

    def __init__(self, console: WebConsole) -> None:
        self.console = console
        self.notices = Notices()
        self.editing = asyncio.Lock()

    def known(self, runtime: Runtime, pack_id: str) -> CharacterPack:
        pack = runtime.packs.get(pack_id)
        if pack is None:
            raise HTTPException(404, "No character with that id is loaded.")
        return pack

    def href(self, pack_id: str, notice: str | None = None, page: int | None = None, anchor: str = "") -> str:
        query = {key: value for key, value in (("notice", notice), ("page", page)) if value is not None}
        tail = f"?{urlencode(query)}" if query else ""
        return f"{self.console.prefix}/characters/{quoted(pack_id)}{tail}{f'#{anchor}' if anchor else ''}"

    def declared_over(self, request: Request, limit: int) -> bool:
        declared = request.headers.get("content-length", "")
        return declared.isdigit() and int(declared) > limit + FORM_OVERHEAD

    @asynccontextmanager
    async def upload_form(self, request: Request) -> AsyncIterator[dict[str, Any]]:
        """The checked form of a multipart POST; its spooled files closed at the end."""
        try:
            _session, form = await self.console.checked(request)
            yield form
        finally:
            await request.close()

    def list_page(
        self,
        request: Request,
        session: Session,
        runtime: Runtime,
        *,
        notice: tuple[str, ...] = (),
        failure: Failure | None = None,
        status: int = 200,
    ) -> Response:
        packs = sorted(runtime.packs, key=lambda pack: pack.id)
        response = self.console.page(
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
        self,
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
        response = self.console.page(
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
