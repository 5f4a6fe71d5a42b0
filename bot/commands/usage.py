"""``/usage``: what this chat's conversations cost today and this month, who spent it, what is left."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from itertools import groupby

from bot.commands import Command, CommandContext, CommandRegistry, Level
from bot.governor import SUMMARIES, cost, local_day, month_start
from bot.messages import ChatKey, Reply
from storage.usage import UsageRow

TOP = 5


def _spent(rows: list[UsageRow], context: CommandContext) -> str:
    tokens = sum(row.tokens for row in rows)
    dollars = cost(rows, context.config.budgets.prices)
    return f"{tokens:,} tokens" + (f" (${dollars:.4f})" if dollars is not None else "")


def _voice(rows: list[UsageRow], context: CommandContext) -> str | None:
    """Characters and seconds spoken by a priced speech endpoint, with their cost; ``None`` if none."""
    characters = sum(row.voice_chars for row in rows)
    if not characters:
        return None
    seconds = sum(row.voice_ms for row in rows) / 1000
    line = f"{characters:,} characters spoken, {seconds:,.0f} s of voice"
    if price := context.config.voice.openai.price_per_million_chars:
        line += f" (${characters * price / 1_000_000:.4f})"
    return line


def _left(used: int, limit: int) -> str:
    return "no limit" if not limit else f"{max(limit - used, 0):,} of {limit:,} tokens"


async def handle_usage(context: CommandContext, args: str) -> Reply:
    if context.governor is not None:
        today = context.governor.today()
    else:
        today = local_day(context.config.scheduler.timezone, datetime.now())
    if args.strip().casefold() == "all":
        # NOTE: every chat's spending is the whole bot's business, whatever the right over this chat.
        context.demand("/usage all", Level.SUPERUSER)
        return await _everywhere(context, today)
    key, user_id = context.incoming.key, context.incoming.sender.user_id
    month = await context.repository.usage.rows(month_start(today), today, key)
    day = await context.repository.usage.rows(today, today, key)
    names = await context.repository.chats.participants(key)
    by_user: Counter[str] = Counter()
    for row in day:
        by_user[row.user_id] += row.tokens
    names[SUMMARIES] = "(summaries)"
    top = " · ".join(f"{names.get(user, user)} {tokens:,}" for user, tokens in by_user.most_common(TOP))
    budgets = context.config.budgets
    chat_tokens, own_tokens = sum(by_user.values()), by_user[user_id]
    lines = [
        f"Usage here today ({today}): {_spent(day, context)}, {sum(row.replies for row in day)} replies",
        f"This month: {_spent(month, context)}",
        f"Most today: {top or 'nobody yet'}",
        f"Left today: this chat {_left(chat_tokens, budgets.chat_daily_tokens)}; "
        f"you {_left(own_tokens, budgets.user_daily_tokens)}",
    ]
    for when, rows in (("today", day), ("this month", month)):
        if (voice := _voice(rows, context)) is not None:
            lines.append(f"Voice {when}: {voice}")
    if budgets.fallback_model:
        lines.append(f"Past {budgets.soft_ratio:.0%} of a budget, {budgets.fallback_model} answers instead.")
    return Reply("\n".join(lines))


async def _everywhere(context: CommandContext, today: str) -> Reply:
    month = await context.repository.usage.rows(month_start(today), today)
    if not month:
        return Reply("No tokens spent this month.")
    day = await context.repository.usage.rows(today, today)

    def chat_of(row: UsageRow) -> ChatKey:
        return ChatKey(row.platform, row.chat_id)

    monthly = {
        chat: list(rows)
        for chat, rows in groupby(sorted(month, key=lambda r: (r.platform, r.chat_id)), key=chat_of)
    }
    ranked = sorted(monthly.items(), key=lambda item: -sum(row.tokens for row in item[1]))
    lines = [f"All chats: today {_spent(day, context)}; this month {_spent(month, context)}"]
    for chat, rows in ranked[:10]:
        today_rows = [row for row in day if chat_of(row) == chat]
        spent = f"today {_spent(today_rows, context)}, month {_spent(rows, context)}"
        lines.append(f"{chat.platform}:{chat.chat_id}: {spent}")
    if len(ranked) > 10:
        lines.append(f"… and {len(ranked) - 10} more chats")
    return Reply("\n".join(lines))


def register(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            "usage",
            "tokens and cost today and this month, top members, budget left",
            handle_usage,
            usage="[all]",
            level=Level.CHAT_ADMIN,
            aliases=("用量",),
        )
    )
