"""Scheduled jobs on APScheduler, in the bot's event loop.

The jobs are declared at start from the config and the database, which holds what they need (the
summaries, the messages, each chat's greeting time), so nothing is lost across restarts. A job that
raises is logged and retried ``[scheduler] retry_min`` later, up to ``max_retries`` times in a row,
unless its next regular time comes sooner; it never stops the bot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.messages import ChatKey

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]
RETRY = "~retry"


@dataclass(slots=True, frozen=True)
class JobInfo:
    """A job as ``/jobs`` shows it."""

    id: str
    name: str
    next_run: datetime | None
    chat: ChatKey | None = None
    """The chat the job is for (a greeting); ``None`` for the bot's own jobs."""


class Scheduler:
    """The bot's jobs: :meth:`every`, :meth:`daily` and :meth:`once` declare one, :meth:`start` runs
    them, :meth:`jobs` lists them."""

    def __init__(self, *, retry_min: float = 5.0, max_retries: int = 3) -> None:
        self.retry = timedelta(minutes=retry_min)
        self.max_retries = max_retries
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
        )
        self._scheduler.add_listener(self._finished, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
        self._work: dict[str, tuple[str, Work]] = {}
        self._chats: dict[str, ChatKey] = {}
        self._failures: dict[str, int] = {}
        self._running: set[asyncio.Task[object]] = set()

    def every(self, job_id: str, name: str, minutes: float, work: Work) -> None:
        self._add(job_id, name, work, IntervalTrigger(minutes=minutes))

    def daily(
        self, job_id: str, name: str, at: time, zone: tzinfo, work: Work, *, chat: ChatKey | None = None
    ) -> None:
        """Run ``work`` every day at ``at`` in the time zone ``zone``."""
        self._add(job_id, name, work, CronTrigger(hour=at.hour, minute=at.minute, timezone=zone), chat)

    def once(
        self, job_id: str, name: str, when: datetime, work: Work, *, chat: ChatKey | None = None
    ) -> None:
        self._add(job_id, name, work, DateTrigger(when), chat)

    def _add(self, job_id: str, name: str, work: Work, trigger: object, chat: ChatKey | None = None) -> None:
        self._work[job_id] = (name, work)
        if chat is not None:
            self._chats[job_id] = chat
        self._scheduler.add_job(self._tracked(work), trigger, id=job_id, name=name, replace_existing=True)

    def _tracked(self, work: Work) -> Callable[[], Awaitable[object]]:
        """``work`` as a job whose run :meth:`aclose` can wait for."""

        async def job() -> object:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)  # type: ignore[arg-type]
            try:
                return await work()
            finally:
                self._running.discard(task)  # type: ignore[arg-type]

        return job

    def remove(self, job_id: str) -> bool:
        """Remove a job and its pending retry; ``False`` when there was none."""
        found = False
        for key in (job_id, job_id + RETRY):
            if self._scheduler.get_job(key) is not None:
                self._scheduler.remove_job(key)
                found = True
        self._work.pop(job_id, None)
        self._chats.pop(job_id, None)
        self._failures.pop(job_id, None)
        return found

    def start(self) -> None:
        """Start running the jobs; call from inside the running event loop."""
        self._scheduler.start()

    def jobs(self, chat: ChatKey | None = None) -> list[JobInfo]:
        """The bot's own jobs and, with ``chat``, that chat's (never other chats')."""
        listed = []
        for job in self._scheduler.get_jobs():
            owner = self._chats.get(job.id.removesuffix(RETRY))
            if owner is None or owner == chat:
                listed.append(JobInfo(job.id, job.name, getattr(job, "next_run_time", None), owner))
        return listed

    async def run_now(self, job_id: str) -> None:
        """Run a job at once, outside its schedule (tests)."""
        if job_id not in self._work:
            raise KeyError(job_id)
        await self._work[job_id][1]()

    def shutdown(self) -> None:
        """Stop starting jobs; one already running goes on (see :meth:`aclose`)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Stop starting jobs and wait up to ``timeout_s`` for the running ones to finish."""
        self.shutdown()
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout_s)

    def _finished(self, event: JobExecutionEvent) -> None:
        job_id = event.job_id.removesuffix(RETRY)
        if event.exception is None:
            self._failures.pop(job_id, None)
            return
        failures = self._failures[job_id] = self._failures.get(job_id, 0) + 1
        regular = self._scheduler.get_job(job_id)
        next_run: datetime | None = getattr(regular, "next_run_time", None) if regular else None
        retry_at = datetime.now(UTC) + self.retry
        if job_id not in self._work or failures > self.max_retries or (next_run and next_run <= retry_at):
            log.error("job %s failed, it runs again at its next time: %s", job_id, event.exception)
            self._failures.pop(job_id, None)
            return
        name, work = self._work[job_id]
        log.error(
            "job %s failed (%d in a row), retried at %s: %s",
            job_id,
            failures,
            retry_at.strftime("%H:%M:%S"),
            event.exception,
        )
        self._scheduler.add_job(
            self._tracked(work),
            DateTrigger(retry_at),
            id=job_id + RETRY,
            name=f"{name} (retry)",
            replace_existing=True,
        )
