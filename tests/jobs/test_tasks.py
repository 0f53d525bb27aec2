"""Task registration and the retry policy both runners share."""

from __future__ import annotations

import pytest

from switchboard.jobs import JobContext, Retry, TaskRegistry, UnknownTask
from switchboard.jobs.tasks import checked_args, describe_error


def test_backoff_doubles_up_to_its_cap_and_stops_after_the_last_attempt() -> None:
    retry = Retry(max_attempts=6, base_seconds=1.0, max_seconds=5.0)
    assert [retry.delay_after(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, None]
    assert Retry(max_attempts=10_000).delay_after(5_000) == Retry().max_seconds
    assert Retry(max_attempts=1).delay_after(1) is None


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_seconds": -1.0}, {"base_seconds": 10.0, "max_seconds": 5.0}],
)
def test_a_retry_policy_that_cannot_work_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Retry(**options)  # type: ignore[arg-type]


async def test_a_task_is_registered_once_by_name_and_callable_directly() -> None:
    registry = TaskRegistry()
    seen: list[str] = []

    @registry.task("demo.echo", retry=Retry(max_attempts=2), cron="*/5 * * * *")
    async def echo(ctx: JobContext, *, word: str) -> None:
        seen.append(word)

    assert registry.get("demo.echo") is echo
    assert registry.get(echo) is echo
    assert (echo.retry.max_attempts, echo.cron) == (2, "*/5 * * * *")
    assert registry.periodic() == [echo]
    await echo(None, word="hi")  # type: ignore[arg-type]
    assert seen == ["hi"]
    with pytest.raises(ValueError, match="already registered"):
        registry.task("demo.echo")(echo.function)
    with pytest.raises(UnknownTask):
        registry.get("demo.missing")


def test_a_bad_cron_schedule_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="cron"):
        TaskRegistry().task("demo.tick", cron="every minute")(_noop)


def test_arguments_must_survive_json() -> None:
    assert checked_args({"a": [1, "b", None]}) == {"a": [1, "b", None]}
    assert checked_args(None) == {}
    with pytest.raises(TypeError, match="JSON"):
        checked_args({"x": object()})
    with pytest.raises(TypeError, match="JSON"):
        checked_args({"x": float("nan")})


def test_a_stored_error_names_its_type_and_is_bounded() -> None:
    assert describe_error(KeyError("k")) == "KeyError: 'k'"
    assert len(describe_error(RuntimeError("x" * 10_000))) == 2000


async def _noop(ctx: JobContext) -> None:
    return None
