"""What every runner promises, on every database it runs on."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from switchboard.db.base import utcnow
from switchboard.db.models import Job, JobStatus
from switchboard.jobs import JobQueue, UnknownTask
from switchboard.jobs.distributed import ProcrastinateQueue
from switchboard.jobs.embedded import EmbeddedQueue
from tests.conftest import wait_until
from tests.jobs.conftest import RUNNERS, OpenQueue, state_of
from tests.jobs.probe import FAST_RETRY, Probe, registry_for

pytestmark = RUNNERS


async def wait_for_status(queue: JobQueue, job_id: str, status: JobStatus) -> None:
    async def reached() -> bool:
        state = await queue.get(job_id)
        return state is not None and state.status is status

    await wait_until(reached, seconds=10, what=f"job {job_id} {status.value}")


async def test_a_job_runs_with_its_arguments_and_id(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))

    assert await queue.enqueue("test.record", {"value": "x", "n": 2}, job_id="record:1")

    await probe.wait_for(lambda: len(probe.runs) == 1, "the run")
    [run] = probe.runs
    assert (run.job_id, run.attempt, run.args) == ("record:1", 1, {"value": "x", "n": 2})
    await wait_for_status(queue, "record:1", JobStatus.SUCCEEDED)
    assert (await state_of(queue, "record:1")).attempts == 1


async def test_the_same_id_twice_is_one_job_before_and_after_it_runs(
    open_queue: OpenQueue,
) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))

    assert await queue.enqueue("test.record", {"run": 1}, job_id="once")
    assert not await queue.enqueue("test.record", {"run": 2}, job_id="once")
    await wait_for_status(queue, "once", JobStatus.SUCCEEDED)
    assert not await queue.enqueue("test.record", {"run": 3}, job_id="once")

    # A later job is run, so the duplicate would have been too.
    assert await queue.enqueue("test.record", {"run": 4}, job_id="later")
    await wait_for_status(queue, "later", JobStatus.SUCCEEDED)
    assert [run.args["run"] for run in probe.runs] == [1, 4]


async def test_two_processes_share_ids_and_never_run_a_job_twice(open_queue: OpenQueue) -> None:
    probe = Probe()
    registry = registry_for(probe)
    first, second = await open_queue(registry), await open_queue(registry)

    results = await asyncio.gather(
        *(
            q.enqueue("test.record", {"from": i}, job_id="shared")
            for i, q in enumerate([first, second])
        )
    )
    assert sorted(results) == [False, True]
    ids = [f"job:{n}" for n in range(20)]
    for n, job_id in enumerate(ids):
        assert await (first if n % 2 else second).enqueue("test.record", job_id=job_id)

    await probe.wait_for(lambda: len(probe.runs) == 21, "21 runs")
    for job_id in ["shared", *ids]:
        await wait_for_status(first, job_id, JobStatus.SUCCEEDED)
    assert sorted(run.job_id for run in probe.runs) == sorted(["shared", *ids])


async def test_a_job_waits_for_its_run_at(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))
    before = time.monotonic()
    run_at = utcnow() + timedelta(seconds=0.6)

    assert await queue.enqueue("test.record", job_id="later", run_at=run_at)
    assert await queue.enqueue("test.record", job_id="now")

    await probe.wait_for(lambda: len(probe.runs) == 2, "both runs")
    started = {run.job_id: run.at - before for run in probe.runs}
    # Which of the two starts first is the runner's business once both are due (a slow
    # machine can reach its first poll after run_at); that "later" never starts early is not.
    assert started["later"] >= 0.6, started
    await wait_for_status(queue, "later", JobStatus.SUCCEEDED)


async def test_a_failing_job_is_retried_with_backoff_then_fails(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))

    assert await queue.enqueue("test.fail", job_id="doomed")

    await wait_for_status(queue, "doomed", JobStatus.FAILED)
    runs = probe.runs_of("test.fail")
    assert [run.attempt for run in runs] == [1, 2, 3]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(runs)]
    waits = [0.2, 0.3]  # the second is capped (0.4 uncapped)
    assert [FAST_RETRY.delay_after(1), FAST_RETRY.delay_after(2)] == waits
    assert all(gap >= wait for gap, wait in zip(gaps, waits, strict=True)), gaps
    state = await state_of(queue, "doomed")
    assert state.attempts == 3
    assert state.last_error == "RuntimeError: boom on run 3"


async def test_a_job_that_fails_once_succeeds_on_its_retry(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))

    assert await queue.enqueue("test.flaky", job_id="flaky")

    await wait_for_status(queue, "flaky", JobStatus.SUCCEEDED)
    assert [run.attempt for run in probe.runs] == [1, 2]
    state = await state_of(queue, "flaky")
    assert state.attempts == 2


async def test_concurrency_is_bounded(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe), concurrency=2)
    for n in range(5):
        assert await queue.enqueue("test.hold", job_id=f"hold:{n}")

    # Let one job through at a time, each time once the runner has filled its slots.
    for remaining in range(5, 0, -1):
        busy = min(2, remaining)
        await probe.wait_for(lambda: probe.running == busy, f"{busy} running")  # noqa: B023
        probe.gate.release()
    for n in range(5):
        await wait_for_status(queue, f"hold:{n}", JobStatus.SUCCEEDED)
    assert probe.max_running == 2
    assert len(probe.runs) == 5


async def test_a_job_cut_short_by_stop_runs_again_in_the_next_runner(
    open_queue: OpenQueue,
) -> None:
    probe = Probe()
    registry = registry_for(probe)
    first = await open_queue(registry)
    assert await first.enqueue("test.hold", job_id="interrupted")
    await probe.wait_for(lambda: probe.running == 1, "the job to start")
    assert not await first.enqueue("test.hold", job_id="interrupted")  # running: still one

    await first.stop()  # the job never finishes inside the grace period
    assert (await state_of(first, "interrupted")).status is JobStatus.QUEUED

    probe.gate.release()
    second = await open_queue(registry)
    await wait_for_status(second, "interrupted", JobStatus.SUCCEEDED)
    assert [run.job_id for run in probe.runs] == ["interrupted", "interrupted"]


async def test_a_waiting_job_can_be_cancelled_and_its_id_stays_taken(
    open_queue: OpenQueue,
) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))
    assert await queue.enqueue("test.record", job_id="never", run_at=utcnow() + timedelta(hours=1))

    assert await queue.cancel("never")
    assert not await queue.cancel("never")
    assert not await queue.cancel("unknown")
    assert (await state_of(queue, "never")).status is JobStatus.CANCELLED
    assert not await queue.enqueue("test.record", job_id="never")
    assert await queue.get("unknown") is None
    assert probe.runs == []


async def test_unknown_tasks_and_non_json_arguments_are_refused(open_queue: OpenQueue) -> None:
    queue = await open_queue(registry_for(Probe()), start=False)

    with pytest.raises(UnknownTask):
        await queue.enqueue("test.nope", job_id="x")
    with pytest.raises(TypeError, match="JSON"):
        await queue.enqueue("test.record", {"when": utcnow()}, job_id="y")
    assert await queue.get("x") is None
    assert await queue.get("y") is None


async def test_a_periodic_task_runs_once_per_tick_across_processes(open_queue: OpenQueue) -> None:
    probe = Probe()
    registry = registry_for(probe, periodic=True)
    await open_queue(registry)
    await open_queue(registry)

    await probe.wait_for(lambda: len(probe.runs_of("test.tick")) >= 2, "two ticks")
    ids = [run.job_id for run in probe.runs_of("test.tick")]
    assert len(ids) == len(set(ids)), ids
    assert all(job_id.startswith("test.tick@") for job_id in ids)


async def succeeded_ticks(queue: JobQueue) -> int:
    """The finished runs of ``test.tick`` each runner keeps in its own tables."""
    if isinstance(queue, ProcrastinateQueue):
        found = await queue.app.job_manager.list_jobs_async(task="test.tick", status="succeeded")
        return len(list(found))
    assert isinstance(queue, EmbeddedQueue)
    async with queue.services.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.task == "test.tick", Job.status == JobStatus.SUCCEEDED)
            )
            or 0
        )


async def test_pruning_forgets_finished_ticks_but_never_an_id(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe, periodic=True))
    assert await queue.enqueue("test.record", job_id="once")
    await wait_for_status(queue, "once", JobStatus.SUCCEEDED)

    async def ticked() -> bool:
        return await succeeded_ticks(queue) >= 1

    await wait_until(ticked, what="a finished tick", every=0.1)

    await queue.prune(timedelta(hours=1))  # nothing is that old yet
    assert await succeeded_ticks(queue) >= 1

    await queue.prune(timedelta(0))
    assert await succeeded_ticks(queue) == 0
    assert not await queue.enqueue("test.record", job_id="once")  # its id is still taken
    assert [run.job_id for run in probe.runs_of("test.record")] == ["once"]


async def test_many_jobs_enqueued_at_once_keep_each_id_once(open_queue: OpenQueue) -> None:
    probe = Probe()
    queue = await open_queue(registry_for(probe))
    assert await queue.enqueue("test.record", {"n": 0}, job_id="many:0")

    created = await queue.enqueue_many("test.record", {f"many:{n}": {"n": n} for n in range(3)})

    assert created == 2  # many:0 was taken
    await probe.wait_for(lambda: len(probe.runs) == 3, "three runs")
    assert sorted((run.job_id, run.args["n"]) for run in probe.runs) == [
        ("many:0", 0),
        ("many:1", 1),
        ("many:2", 2),
    ]
    assert await queue.enqueue_many("test.record", {}) == 0
