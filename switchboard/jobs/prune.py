"""Forget finished runs of periodic tasks, hourly, so a per-second tick does not grow the
job tables by 86,400 rows a day."""

from __future__ import annotations

from datetime import timedelta

from switchboard.jobs.tasks import JobContext, Retry, task

PRUNE_TASK = "jobs.prune"
KEEP = timedelta(hours=24)  # a day of runs stays readable for whoever debugs a tick


@task(PRUNE_TASK, retry=Retry(max_attempts=1), cron="7 * * * *")
async def prune_jobs(ctx: JobContext) -> None:
    await ctx.jobs.prune(KEEP)
