"""The scheduler runs jobs in the event loop; a failing job is logged and runs again, the bot goes on."""

from __future__ import annotations

import asyncio
import logging

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
