"""The scheduler runs jobs in the event loop; a failing job is logged and runs again, the bot goes on."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.messages import Role
from bot.router import Router
from bot.scheduler import Scheduler
from tests.messages import group_message


async def test_a_failing_job_runs_again_at_its_next_time(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    third = asyncio.Event()

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            third.set()
        if len(runs) == 1:
            raise RuntimeError("the model server is down")

    scheduler = Scheduler()
    scheduler.every("flaky", "a flaky job", 0.002, flaky)
    scheduler.start()
    try:
        await asyncio.wait_for(third.wait(), 5)
    finally:
        scheduler.shutdown()
    assert any(
        record.levelno == logging.ERROR and "job flaky failed" in record.getMessage()
        for record in caplog.records
    )


async def test_jobs_lists_the_scheduled_jobs_for_admins(router: Router) -> None:
    async def nothing() -> None:
        return None

    router.scheduler.every("summaries", "rolling summaries", 5, nothing)
    router.scheduler.start()
    try:
        (refused,) = await router.handle(group_message("/jobs"))
        assert refused.text == "/jobs is for group admins only."
        (listed,) = await router.handle(group_message("/jobs", role=Role.ADMIN))
        assert listed.text.startswith("Scheduled jobs:\n• rolling summaries (summaries): next run 20")
    finally:
        router.scheduler.shutdown()


async def flaky_once(scheduler: Scheduler, failures: int) -> list[datetime]:
    """Run a one-off job through the scheduler that fails ``failures`` times; the times it ran."""
    runs: list[datetime] = []

    async def job() -> None:
        runs.append(datetime.now(UTC))
        if len(runs) <= failures:
            raise RuntimeError("the model server is down")

    scheduler.once("rare", "a rare job", datetime.now(UTC), job)
    scheduler.start()
    try:
        await asyncio.sleep(2.5)
    finally:
        scheduler.shutdown()
    return runs


async def test_a_failing_job_is_retried_before_its_next_time(caplog: pytest.LogCaptureFixture) -> None:
    runs = await flaky_once(Scheduler(retry_min=0.01, max_retries=3), failures=2)

    assert len(runs) == 3, "two failures, each retried 0.6 s later, then success"
    assert runs[2] - runs[0] >= timedelta(seconds=1.2)
    assert sum("retried at" in record.getMessage() for record in caplog.records) == 2


async def test_retries_stop_after_max_retries(caplog: pytest.LogCaptureFixture) -> None:
    runs = await flaky_once(Scheduler(retry_min=0.01, max_retries=1), failures=5)

    assert len(runs) == 2, "the first run and one retry"
    assert "job rare failed, it runs again at its next time" in caplog.records[-1].getMessage()
