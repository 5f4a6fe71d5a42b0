"""Scheduled jobs on APScheduler, in the bot's event loop.

The jobs are declared by the runtime at start from the config and the database (which holds what they
need: the summaries, the messages), so nothing is lost across restarts. A job that raises is logged
and runs again at its next time; it never stops the bot.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class JobInfo:
    """A job as ``/jobs`` shows it."""

    id: str
    name: str
    next_run: datetime | None


class Scheduler:
    """The bot's jobs: ``every(...)`` declares one, :meth:`start` runs them, :meth:`jobs` lists them."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        self._scheduler.add_listener(self._failed, EVENT_JOB_ERROR)

    def every(self, job_id: str, name: str, minutes: float, work: Callable[[], Awaitable[object]]) -> None:
        self._scheduler.add_job(
            work, IntervalTrigger(minutes=minutes), id=job_id, name=name, replace_existing=True
        )

    def start(self) -> None:
        """Start running the jobs; call from inside the running event loop."""
        self._scheduler.start()

    def jobs(self) -> list[JobInfo]:
        return [
            JobInfo(job.id, job.name, getattr(job, "next_run_time", None))
            for job in self._scheduler.get_jobs()
        ]

    async def run_now(self, job_id: str) -> None:
        """Run a job at once, outside its schedule (``/jobs run``, tests)."""
        job = self._scheduler.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        await job.func()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @staticmethod
    def _failed(event: JobExecutionEvent) -> None:
        log.error("job %s failed, it runs again at its next time: %s", event.job_id, event.exception)
