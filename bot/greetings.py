"""Daily in-character greetings that a chat turns on with ``/greet on 08:30``.

Each chat's greeting time is stored (table ``greetings``) and scheduled again at every start, so it
survives restarts; a greeting missed while the bot was down is still sent when the bot comes back
within ``[scheduler] greeting_grace_min``. The day is claimed in the database before the greeting is
written, so a chat is greeted at most once a day, whatever restarts or processes there are; a greeting
that could not be sent gives its day back and is retried by the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING

from tzlocal import get_localzone

from bot.config import zone
from bot.engine.prompt import Turn
from bot.messages import ChatKey

if TYPE_CHECKING:
    from bot.config import SchedulerConfig
    from bot.engine.packs import CharacterPack
    from bot.scheduler import Scheduler
    from storage import Repository
    from storage.greetings import SavedGreeting

log = logging.getLogger(__name__)

Send = Callable[[ChatKey, datetime], Awaitable[None]]
"""Writes and posts the greeting of a chat for the given local time; raises when it cannot."""

_PARTS = ((5, "morning", "早上"), (12, "afternoon", "下午"), (18, "evening", "晚上"), (23, "night", "深夜"))
_WEEKDAYS_ZH = "一二三四五六日"


def part_of_day(hour: int) -> tuple[str, str]:
    """``("morning", "早上")`` and so on, for an hour of the day."""
    english, chinese = "night", "深夜"
    for start, name, name_zh in _PARTS:
        if hour >= start:
            english, chinese = name, name_zh
    return english, chinese


def greeting_cue(pack: CharacterPack, now: datetime) -> Turn:
    """The narrator's line that asks the character for today's greeting: the day, the hour, the group."""
    english, chinese = part_of_day(now.hour)
    if pack.settings.language == "zh":
        text = (
            f"现在是{now.year}年{now.month}月{now.day}日，星期{_WEEKDAYS_ZH[now.weekday()]}，"
            f"{chinese}{now:%H:%M}。{pack.name}来跟群里的大家打个招呼：用自己的口吻说一两句，"
            "贴合今天这个日子和时辰。"
        )
        return Turn("旁白", text)
    text = (
        f"It is {now:%A}, {now.day} {now:%B} {now.year}, {now:%H:%M} in the {english}. "
        f"{pack.name} greets everyone in the group: a line or two in {pack.name}'s own voice, "
        "fitting this day and this hour."
    )
    return Turn("Narrator", text)


def job_id(key: ChatKey) -> str:
    return f"greeting:{key}"


class Greetings:
    """Stores, schedules and sends the chats' daily greetings; ``send`` writes and posts one."""

    def __init__(
        self, *, repository: Repository, scheduler: Scheduler, config: SchedulerConfig, send: Send
    ) -> None:
        self.repository = repository
        self.scheduler = scheduler
        self.config = config
        self.send = send

    def zone(self, name: str = "") -> tzinfo:
        """The time zone ``name``, or ``[scheduler] timezone``, or the machine's."""
        chosen = name or self.config.timezone
        return zone(chosen) if chosen else get_localzone()

    async def turn_on(self, key: ChatKey, at: time, zone_name: str, *, by: str) -> datetime:
        """Greet ``key`` every day at ``at`` (in ``zone_name``, or the default zone); returns the next
        greeting's time."""
        tz = self.zone(zone_name)
        await self.repository.greetings.save(key, at=f"{at:%H:%M}", timezone=zone_name, created_by=by)
        self._schedule(key, at, tz)
        return self.next_time(at, tz)

    async def turn_off(self, key: ChatKey) -> bool:
        self.scheduler.remove(job_id(key))
        self.scheduler.remove(job_id(key) + "~catch-up")
        return await self.repository.greetings.delete(key)

    async def saved(self, key: ChatKey) -> SavedGreeting | None:
        return await self.repository.greetings.get(key)

    async def schedule_saved(self) -> int:
        """Schedule every stored greeting (at start), and send now the ones missed by less than
        ``[scheduler] greeting_grace_min``; returns how many there are."""
        saved = await self.repository.greetings.all()
        grace = timedelta(minutes=self.config.greeting_grace_min)
        for greeting in saved:
            key = ChatKey(greeting.platform, greeting.chat_id)
            tz = self.zone(greeting.timezone)
            at = time.fromisoformat(greeting.at)
            self._schedule(key, at, tz)
            now = datetime.now(tz)
            due = datetime.combine(now.date(), at, tz)
            if due <= now <= due + grace and greeting.last_sent != now.date().isoformat():
                log.info("%s: the greeting of %s was missed while the bot was down; sending it now", key, due)
                self.scheduler.once(
                    job_id(key) + "~catch-up",
                    f"late greeting in {key}",
                    now,
                    partial(self.greet, key),
                    chat=key,
                )
        return len(saved)

    async def greet(self, key: ChatKey) -> bool:
        """The job: greet ``key`` unless it was greeted today already; ``True`` when it was greeted now."""
        greeting = await self.repository.greetings.get(key)
        if greeting is None:
            return False
        now = datetime.now(self.zone(greeting.timezone))
        day = now.date().isoformat()
        if not await self.repository.greetings.claim_day(key, day):
            log.info("%s: already greeted on %s", key, day)
            return False
        try:
            await self.send(key, now)
        except BaseException:
            await self.repository.greetings.release_day(key, day, greeting.last_sent)
            raise
        log.info("%s: greeted for %s", key, day)
        return True

    def _schedule(self, key: ChatKey, at: time, tz: tzinfo) -> None:
        self.scheduler.daily(job_id(key), f"greeting in {key}", at, tz, partial(self.greet, key), chat=key)

    @staticmethod
    def next_time(at: time, tz: tzinfo) -> datetime:
        now = datetime.now(tz)
        today = datetime.combine(now.date(), at, tz)
        return today if today > now else datetime.combine(now.date() + timedelta(days=1), at, tz)
