"""The inspector: for any reply, why the character answered the way it did.

It reads the trace the record stage stored with the reply (:mod:`bot.traces`): the scenes retrieved
with their dense, lexical and fused scores, the lorebook entries and the key that called each, what
was recalled, the summary, the prompt's parts against their budgets, the model, latency, tokens and
cost, and the reply check's verdict. A chat's recent replies are listed for the same purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from bot.governor import price_of
from bot.messages import ChatKey
from bot.traces import ReplyTrace

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.engine.packs import CharacterPack
    from plugins.web.app import WebConsole

LISTED = 50
BUDGET_OF = {
    "persona": "persona_tokens",
    "scenes": "scenes_tokens",
    "history": "history_tokens",
    "message": "message_tokens",
    "lore": "lore_tokens",
    "summary": "summary_tokens",
    "recalled": "recall_tokens",
}
"""Each prompt part and the ``[prompt]`` budget it is laid out under."""


def dollars(trace: ReplyTrace, config: BotConfig) -> float | None:
    """What the reply cost, when its model has a price in ``[budgets] prices``."""
    price = price_of(trace.model, config.budgets.prices)
    if price is None or trace.prompt_tokens is None or trace.completion_tokens is None:
        return None
    return (trace.prompt_tokens * price.input + trace.completion_tokens * price.output) / 1_000_000


def parts(trace: ReplyTrace) -> list[tuple[str, int, int | None]]:
    """The prompt's parts as (name, tokens, budget or ``None`` where there is none)."""
    tokens = trace.prompt.tokens
    rows: list[tuple[str, int, int | None]] = []
    for name, budget_key in BUDGET_OF.items():
        budget = trace.prompt.budgets.get(budget_key)
        rows.append((name, int(getattr(tokens, name)), int(budget) if budget is not None else None))
    return rows


def scene_texts(pack: CharacterPack | None) -> dict[str, str]:
    return {scene.id: scene.text for scene in pack.scenes} if pack is not None else {}


def add_inspector_routes(console: WebConsole) -> None:
    app = console.app

    @app.get("/inspect/{delivery_id}", response_class=HTMLResponse)
    async def inspect(request: Request, delivery_id: str) -> Response:
        session = console.session(request)
        runtime = console.live()
        entry = (
            await runtime.router.repository.traces.entry(int(delivery_id)) if delivery_id.isdigit() else None
        )
        if entry is None:
            raise HTTPException(
                404, "No trace of that reply (it is older than [memory] trace_days, or not a character's)."
            )
        trace = ReplyTrace.from_json(entry.trace)
        pack = runtime.packs.get(trace.character_id)
        return console.page(
            request,
            "inspect.html",
            session,
            entry=entry,
            trace=trace,
            parts=parts(trace),
            cost=dollars(trace, runtime.config),
            scenes=scene_texts(pack),
        )

    @app.get("/replies", response_class=HTMLResponse)
    async def replies(request: Request, platform: str = "", chat: str = "", before: str = "") -> Response:
        session = console.session(request)
        runtime = console.live()
        if not platform or not chat:
            raise HTTPException(400, "Name the chat: ?platform=onebot&chat=12345")
        key = ChatKey(platform, chat)
        before_id = int(before) if before.isdigit() else None
        entries = await runtime.router.repository.traces.recent(key, LISTED, before_id)
        traces = [(entry, ReplyTrace.from_json(entry.trace)) for entry in entries]
        return console.page(
            request, "replies.html", session, key=key, traces=traces, more=len(entries) == LISTED
        )
