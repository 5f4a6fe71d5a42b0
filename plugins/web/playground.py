"""The playground: talk to the characters from the browser, as one or several made-up members.

A playground chat is a chat like a QQ group, on its own platform (``console-web``): its messages go
through the same router, so memory, commands, group manners and several characters answering one
message all behave as they do in a group. What the characters said is shown from this process's
transcript of the chat (the last :data:`KEPT` lines), with their screenshots and voices; each reply
links to the inspector.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlencode

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from bot.messages import ChatKey, Incoming, Reply, Role, Sender

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from plugins.web.app import WebConsole

PLATFORM = "console-web"
KEPT = 100
"""Lines of each playground chat kept for display."""
MAX_CHATS = 200
_NAME = re.compile(r"[^\w\- ]+", re.UNICODE)


@dataclass(slots=True, frozen=True)
class Line:
    """One line of a playground chat as the page shows it."""

    speaker: str
    text: str
    character: str | None = None
    images: tuple[Path, ...] = ()
    voice: Path | None = None
    delivery_id: int | None = None
    voice_only: bool = False
    avatar: Path | None = None


@dataclass(slots=True)
class Transcripts:
    """The last lines of each playground chat, for display (the chats' memory is in the database)."""

    chats: OrderedDict[ChatKey, deque[Line]] = field(default_factory=OrderedDict)

    def of(self, key: ChatKey) -> deque[Line]:
        lines = self.chats.get(key)
        if lines is None:
            lines = self.chats[key] = deque(maxlen=KEPT)
            while len(self.chats) > MAX_CHATS:
                self.chats.popitem(last=False)
        self.chats.move_to_end(key)
        return lines

    def add_reply(self, runtime: Runtime, key: ChatKey, reply: Reply) -> None:
        pack = runtime.packs.get(reply.character) if reply.character else None
        self.of(key).append(
            Line(
                pack.name if pack else "Bot",
                reply.text,
                reply.character,
                tuple(image.path for image in reply.images),
                reply.voice.path if reply.voice else None,
                reply.delivery_id,
                reply.voice_only,
                pack.avatar_path if pack else None,
            )
        )


def clean_name(value: str, default: str) -> str:
    """A made-up member's or chat's name: letters, digits, spaces and dashes, at most 32."""
    name = _NAME.sub("", value).strip()[:32]
    return name or default


def chat_key(kind: str, chat: str, member: str) -> ChatKey:
    """The playground chat a form names: a group by its name, or a member's private chat."""
    if kind == "private":
        return ChatKey.for_chat(PLATFORM, "private", f"web-{member}")
    return ChatKey(PLATFORM, chat)


def add_playground_routes(console: WebConsole) -> None:
    app = console.app
    transcripts = Transcripts()

    async def post(key: ChatKey, reply: Reply) -> None:
        """What the bot posts on its own in a playground chat (a voice after its text)."""
        runtime = console.live()
        transcripts.add_reply(runtime, key, reply)
        await runtime.ledger.settle([reply], "posted")

    console.on_attach(lambda runtime: runtime.outbox.register(PLATFORM, post))

    @app.get("/play", response_class=HTMLResponse)
    async def playground(
        request: Request, chat: str = "playground", kind: str = "group", member: str = "Pip"
    ) -> Response:
        session = console.session(request)
        runtime = console.live()
        kind_ = "private" if kind == "private" else "group"
        chat, member = clean_name(chat, "playground"), clean_name(member, "Pip")
        key = chat_key(kind_, chat, member)
        state = await runtime.router.repository.chats.state(key)
        active = runtime.router.gatherer.active_pack(state)
        packs = sorted(runtime.packs, key=lambda pack: pack.id)
        return console.page(
            request,
            "play.html",
            session,
            lines=list(transcripts.of(key)),
            chat=chat,
            kind=kind_,
            member=member,
            active=active,
            packs=packs,
            media=media_url,
        )

    @app.post("/play")
    async def say(request: Request) -> Response:
        _session, form = await console.checked(request)
        runtime = console.live()
        kind: Literal["group", "private"] = "private" if form.get("kind") == "private" else "group"
        chat = clean_name(str(form.get("chat") or ""), "playground")
        member = clean_name(str(form.get("member") or ""), "Pip")
        text = str(form.get("text") or "").strip()
        key = chat_key(kind, chat, member)
        back = f"{console.prefix}/play?{urlencode({'chat': chat, 'kind': kind, 'member': member})}"
        if not text:
            return RedirectResponse(back, status_code=303)
        incoming = Incoming(
            PLATFORM,
            kind,
            key.chat_id if kind == "group" else f"web-{member}",
            Sender(f"web-{member}", member, Role.OWNER),
            text,
            to_me=kind == "private" or form.get("to_me") == "on",
            message_id=uuid.uuid4().hex,
        )
        transcripts.of(key).append(Line(member, text))
        replies = await runtime.router.handle(incoming)
        for reply in replies:
            transcripts.add_reply(runtime, key, reply)
        await runtime.ledger.settle(replies, "posted")
        return RedirectResponse(back, status_code=303)

    @app.get("/media")
    async def media(request: Request, path: str = "") -> Response:
        """A screenshot, avatar or voice, only from the characters' and the data folders."""
        console.session(request)
        config = console.live().config
        file = await asyncio.to_thread(servable, Path(path), (config.characters_dir, config.data_dir))
        if file is None:
            raise HTTPException(404, "No such file here.")
        return FileResponse(file)


def servable(path: Path, roots: tuple[Path, ...]) -> Path | None:
    """``path`` resolved, when it is a file inside one of ``roots`` (links followed first)."""
    file = path.resolve()
    if any(file.is_relative_to(root.resolve()) for root in roots) and file.is_file():
        return file
    return None


def media_url(prefix: str, path: Path) -> str:
    return f"{prefix}/media?path={quote(str(path))}"
