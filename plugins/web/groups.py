"""The Groups pages: every chat the bot knows, and one chat's settings, memory, greeting and spending.

Settings change through the very storage calls the chat commands make (``/images``, ``/voice``,
``/chatty``, ``/debounce``, ``/training``, ``/forget``), so a change here is the same change a chat
admin makes.
Every route asks for the session first (and a POST for its CSRF token) before it reads anything.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.config import MAX_DEBOUNCE_S
from bot.governor import cost
from bot.greetings import job_id
from bot.messages import ChatKey
from storage.chats import ChatState

if TYPE_CHECKING:
    from bot.config import BotConfig, Price
    from bot.runtime import Runtime
    from plugins.web.app import WebConsole
    from plugins.web.auth import Session
    from storage.chats import KnownChat
    from storage.usage import UsageRow

PAGE_SIZE = 50
CHART_DAYS = 30
IMAGES: dict[str, bool | None] = {"on": True, "off": False, "default": None}
VOICE: dict[str, str | None] = {"on": "on", "off": "off", "only": "only", "default": None}
TRAINING: dict[str, bool] = {"on": True, "off": False}
SAVED = {
    "images": "Screenshots",
    "voice": "Voice",
    "chattiness": "Chattiness",
    "debounce": "Debounce",
    "training": "Training export",
    "forget": "Memory",
}
"""What a ``?saved=`` confirmation may name (anything else is not shown)."""


T = TypeVar("T")


class Invalid(ValueError):
    """A form value the page refuses (400), with a message for the person who typed it."""


def chat_href(prefix: str, platform: str, chat_id: str) -> str:
    """The chat's page; both parts quoted whole (a chat id may hold ``:``, ``/``, ``?`` or ``#``)."""
    return f"{prefix}/groups/{quote(platform, safe='')}/{quote(chat_id, safe='')}"


def is_private(chat_id: str) -> bool:
    return chat_id.startswith("private:")


# ---------------------------------------------------------------------------------------- what is shown


@dataclass(slots=True, frozen=True)
class Setting:
    """One setting as shown: the chat's own value, or the config's when it chose none."""

    shown: str
    own: bool


@dataclass(slots=True, frozen=True)
class Settings:
    images: Setting
    voice: Setting
    chattiness: Setting
    debounce: Setting


def percent(chance: float) -> str:
    return f"{chance * 100:.1f}".removesuffix(".0") + "%"


def chattiness_of(state: ChatState, config: BotConfig) -> float:
    return config.groups.chattiness if state.chattiness is None else state.chattiness


def debounce_of(state: ChatState, config: BotConfig) -> float:
    return config.groups.debounce_s if state.debounce_s is None else state.debounce_s


def settings_of(state: ChatState, config: BotConfig) -> Settings:
    """What the chat runs with, and which of it the chat chose itself."""
    images = config.images.enabled if state.images_enabled is None else state.images_enabled
    return Settings(
        images=Setting("on" if images else "off", state.images_enabled is not None),
        voice=Setting(state.voice_mode or config.voice.mode, state.voice_mode is not None),
        chattiness=Setting(percent(chattiness_of(state, config)), state.chattiness is not None),
        debounce=Setting(f"{debounce_of(state, config):g} s", state.debounce_s is not None),
    )


@dataclass(slots=True, frozen=True)
class Character:
    """A chat's active character as shown: its name, and whether the chat chose it."""

    id: str
    name: str
    chosen: bool
    """``False``: the chat never said ``/switch`` (``[characters] default`` plays)."""
    gone: str | None = None
    """The id of the character the chat chose that is no longer served, when so."""


def active_of(runtime: Runtime, state: ChatState) -> Character:
    pack = runtime.router.gatherer.active_pack(state)
    chosen = state.active_character
    gone = chosen if chosen is not None and chosen not in runtime.packs else None
    return Character(pack.id, pack.name, chosen == pack.id, gone)


@dataclass(slots=True, frozen=True)
class Spent:
    tokens: int
    replies: int
    dollars: float | None

    @property
    def cost(self) -> str:
        return "—" if self.dollars is None else f"${self.dollars:.4f}"


def spent(rows: list[UsageRow], prices: dict[str, Price]) -> Spent:
    return Spent(sum(row.tokens for row in rows), sum(row.replies for row in rows), cost(rows, prices))


def when(moment: datetime | None, tz: tzinfo) -> str:
    """``moment`` in the bot's time zone (a time without one is UTC, as SQLite hands them back)."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


@dataclass(slots=True, frozen=True)
class ChatRow:
    """One line of the Groups list."""

    platform: str
    chat_id: str
    href: str
    character: Character
    settings: Settings
    messages: int
    last_active: str
    today: Spent
    training: bool
    """``/training on``: its exchanges may be exported as training data."""


# ---------------------------------------------------------------------------------------- the chart


@dataclass(slots=True, frozen=True)
class Day:
    day: str
    spent: Spent


@dataclass(slots=True, frozen=True)
class Bar:
    day: str
    tokens: int
    x: float
    y: float
    height: float


@dataclass(slots=True, frozen=True)
class Chart:
    """Tokens per day over :data:`CHART_DAYS` days, drawn as SVG bars by ``group.html``."""

    first: str
    last: str
    peak: int
    bars: list[Bar]
    days: list[Day]
    """The days with usage, newest first (the table under the chart)."""
    total: Spent
    width: int = 600
    height: int = 160
    top: int = 20
    """Room above the bars for the peak's label."""
    bottom: int = 22
    """Room under the bars for the first and last day."""

    @property
    def bar_width(self) -> float:
        return round(self.width / CHART_DAYS * 0.8, 1)

    @property
    def baseline(self) -> int:
        return self.height - self.bottom


def chart(rows: list[UsageRow], today: str, prices: dict[str, Price]) -> Chart:
    last = date.fromisoformat(today)
    days = [(last - timedelta(days=back)).isoformat() for back in range(CHART_DAYS - 1, -1, -1)]
    by_day: defaultdict[str, list[UsageRow]] = defaultdict(list)
    for row in rows:
        by_day[row.day or ""].append(row)
    used = [Day(day, spent(by_day[day], prices)) for day in days if day in by_day]
    peak = max((day.spent.tokens for day in used), default=0)
    drawn = Chart(days[0], days[-1], peak, [], used[::-1], spent(rows, prices))
    plot = drawn.height - drawn.top - drawn.bottom
    step = drawn.width / CHART_DAYS
    for day in used:
        # NOTE: a day with replies but no tokens counted still gets a sliver, so no used day is missing.
        height = round(max(plot * day.spent.tokens / peak, 1.0) if peak else 1.0, 1)
        x = round(days.index(day.day) * step + step * 0.1, 1)
        drawn.bars.append(Bar(day.day, day.spent.tokens, x, drawn.top + plot - height, height))
    return drawn


# ---------------------------------------------------------------------------------------- one chat


@dataclass(slots=True, frozen=True)
class Remembered:
    """A character's memory of the chat."""

    id: str
    name: str
    messages: int
    since: str
    summary: str
    active: bool
    disabled: bool


@dataclass(slots=True, frozen=True)
class GreetingShown:
    at: str
    zone: str
    next_run: str
    last_sent: str


async def greeting_of(runtime: Runtime, key: ChatKey, tz: tzinfo) -> GreetingShown | None:
    """The chat's daily greeting as ``/greet`` and ``/jobs`` read it: stored, and scheduled."""
    greetings = runtime.router.greetings
    saved = await greetings.saved(key)
    if saved is None:
        return None
    try:
        zone = str(greetings.zone(saved.timezone))
    except ValueError:
        zone = f"{saved.timezone} (unknown)"
    job = next((job for job in greetings.scheduler.jobs(chat=key) if job.id == job_id(key)), None)
    next_run = when(job.next_run, tz) if job is not None and job.next_run is not None else "not scheduled"
    return GreetingShown(saved.at, zone, next_run, saved.last_sent or "never")


async def chat_context(runtime: Runtime, known: KnownChat, prefix: str) -> dict[str, Any]:
    """What ``group.html`` shows of one chat."""
    repository, config = runtime.router.repository, runtime.config
    key, state = ChatKey(known.platform, known.chat_id), known.state
    tz = runtime.router.greetings.zone()
    active = active_of(runtime, known.state)
    memories = await repository.messages.character_memories(key)
    summaries = await repository.summaries.of_chat(key)
    characters = []
    for character_id in sorted({*memories, *summaries, active.id}, key=lambda id_: (id_ != active.id, id_)):
        pack = runtime.packs.get(character_id)
        count, first = memories.get(character_id, (0, None))
        characters.append(
            Remembered(
                character_id,
                pack.name if pack is not None else f"{character_id} (removed)",
                count,
                when(first, tz),
                summaries.get(character_id, ("", 0))[0],
                character_id == active.id,
                character_id in state.disabled,
            )
        )
    today = runtime.router.governor.today()
    since = (date.fromisoformat(today) - timedelta(days=CHART_DAYS - 1)).isoformat()
    usage = await repository.usage.rows(since, today, key, by_day=True)
    return {
        "chat": known,
        "href": chat_href(prefix, known.platform, known.chat_id),
        "private": is_private(known.chat_id),
        "active": active,
        "settings": settings_of(known.state, config),
        "defaults": settings_of(ChatState(None, 0), config),
        "training": known.training,
        "chattiness": f"{chattiness_of(state, config) * 100:g}",
        "debounce": f"{debounce_of(state, config):g}",
        "last_active": when(known.last_active, tz),
        "characters": characters,
        "greeting": await greeting_of(runtime, key, tz),
        "chart": chart(usage, today, config.budgets.prices),
        "max_debounce": MAX_DEBOUNCE_S,
        "chart_days": CHART_DAYS,
    }


def number(form: Mapping[str, Any], *, low: float, high: float, what: str) -> float:
    """The form's ``value`` as a number from ``low`` to ``high``, else :class:`Invalid` naming ``what``."""
    text = str(form.get("value") or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{what}: '{text}' is not a number.") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Invalid(f"{what}: {text} is not between {low:g} and {high:g}.")
    return value


def choice(form: Mapping[str, Any], choices: Mapping[str, T], what: str) -> T:
    """The form's ``value``, one of ``choices``' keys, mapped; else :class:`Invalid`."""
    value = str(form.get("value") or "")
    if value not in choices:
        raise Invalid(f"{what}: choose one of {', '.join(choices)}.")
    return choices[value]


# ------------------------------------------------------------------------------- changes (as commands)

Change = Callable[["Runtime", ChatKey, Mapping[str, Any]], Awaitable[None]]


async def change_images(runtime: Runtime, key: ChatKey, form: Mapping[str, Any]) -> None:
    """``/images on|off`` (and back to ``[images] enabled``)."""
    await runtime.router.repository.chats.set_images_enabled(key, choice(form, IMAGES, "Screenshots"))


async def change_voice(runtime: Runtime, key: ChatKey, form: Mapping[str, Any]) -> None:
    """``/voice on|off|only`` (and back to ``[voice] mode``)."""
    await runtime.router.repository.chats.set_voice_mode(key, choice(form, VOICE, "Voice"))


async def change_chattiness(runtime: Runtime, key: ChatKey, form: Mapping[str, Any]) -> None:
    """``/chatty 25%|default``; for groups only, as the command."""
    if is_private(key.chat_id):
        raise Invalid("Chattiness is for groups: in a private chat every message is answered.")
    chance = None if form.get("default") else number(form, low=0, high=100, what="Chattiness (%)") / 100
    await runtime.router.repository.chats.set_manners(key, chattiness=chance)


async def change_debounce(runtime: Runtime, key: ChatKey, form: Mapping[str, Any]) -> None:
    """``/debounce 3s|default``."""
    seconds = (
        None if form.get("default") else number(form, low=0, high=MAX_DEBOUNCE_S, what="Debounce (seconds)")
    )
    await runtime.router.repository.chats.set_manners(key, debounce_s=seconds)


async def change_training(runtime: Runtime, key: ChatKey, form: Mapping[str, Any]) -> None:
    """``/training on|off``: the chat's consent to the export of its exchanges as training data (no
    default to follow: a chat is out until it is let in)."""
    await runtime.router.repository.chats.set_training(key, choice(form, TRAINING, "Training export"))


async def forget(runtime: Runtime, key: ChatKey, form: Mapping[str, Any]) -> None:
    """``/forget``: erase what was said to and by one character in the chat."""
    messages = runtime.router.repository.messages
    character = str(form.get("character") or "")
    if character not in runtime.packs and character not in await messages.character_memories(key):
        raise Invalid(f"Forget: no character '{character}' here.")
    await messages.forget_character(key, character)


CHANGES: dict[str, Change] = {
    "images": change_images,
    "voice": change_voice,
    "chattiness": change_chattiness,
    "debounce": change_debounce,
    "training": change_training,
    "forget": forget,
}
"""Each form of a chat's page: ``POST …/groups/{platform}/{chat_id}/{name}``."""


# ---------------------------------------------------------------------------------------- routes


def add_group_routes(console: WebConsole) -> None:
    """Register the Groups pages on the console's app."""
    app = console.app

    async def known_or_404(runtime: Runtime, key: ChatKey) -> KnownChat:
        found, _total = await runtime.router.repository.chats.known(limit=1, key=key)
        if not found:
            raise HTTPException(404, f"The bot knows no chat {key}.")
        return found[0]

    async def shown(
        request: Request, session: Session, runtime: Runtime, known: KnownChat, **extra: Any
    ) -> HTMLResponse:
        context = await chat_context(runtime, known, console.prefix)
        return console.page(request, "group.html", session, **context, **extra)

    @app.get("/groups", response_class=HTMLResponse)
    async def groups(request: Request, page: str = "1") -> Response:
        session = console.session(request)
        runtime = console.live()
        shown_page = int(page) if page.isascii() and page.isdigit() and len(page) <= 6 else 0
        if shown_page < 1:
            raise HTTPException(400, "page: a whole number from 1.")
        repository, config = runtime.router.repository, runtime.config
        chats, total = await repository.chats.known(limit=PAGE_SIZE, offset=(shown_page - 1) * PAGE_SIZE)
        today = runtime.router.governor.today()
        spent_today: defaultdict[tuple[str, str], list[UsageRow]] = defaultdict(list)
        for row in await repository.usage.rows(today, today):
            spent_today[row.platform, row.chat_id].append(row)
        tz = runtime.router.greetings.zone()
        prices = config.budgets.prices
        rows = [
            ChatRow(
                chat.platform,
                chat.chat_id,
                chat_href(console.prefix, chat.platform, chat.chat_id),
                active_of(runtime, chat.state),
                settings_of(chat.state, config),
                chat.messages,
                when(chat.last_active, tz),
                spent(spent_today.get((chat.platform, chat.chat_id), []), prices),
                chat.training,
            )
            for chat in chats
        ]
        pages = max(math.ceil(total / PAGE_SIZE), 1)
        return console.page(
            request, "groups.html", session, rows=rows, total=total, page=shown_page, pages=pages, today=today
        )

    @app.get("/groups/{platform}/{chat_id:path}", response_class=HTMLResponse)
    async def group(request: Request, platform: str, chat_id: str, saved: str = "") -> Response:
        session = console.session(request)
        runtime = console.live()
        known = await known_or_404(runtime, ChatKey(platform, chat_id))
        return await shown(request, session, runtime, known, saved=SAVED.get(saved))

    def changes(name: str) -> Callable[[Request, str, str], Awaitable[Response]]:
        async def handle(request: Request, platform: str, chat_id: str) -> Response:
            session, form = await console.checked(request)
            runtime = console.live()
            key = ChatKey(platform, chat_id)
            known = await known_or_404(runtime, key)
            try:
                await CHANGES[name](runtime, key, form)
            except Invalid as problem:
                page = await shown(request, session, runtime, known, error=str(problem))
                page.status_code = 400
                return page
            back = chat_href(console.prefix, platform, chat_id)
            return RedirectResponse(f"{back}?saved={name}", status_code=303)

        return handle

    for name in CHANGES:
        app.add_api_route(
            f"/groups/{{platform}}/{{chat_id:path}}/{name}",
            changes(name),
            methods=["POST"],
            name=f"group_{name}",
        )
