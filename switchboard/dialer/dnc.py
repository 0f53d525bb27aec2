"""The do-not-call list: numbers a workspace, or one of its campaigns, must never dial.

An entry's ``scope`` is ``"workspace"`` (no dial of the workspace may reach the
number) or a campaign's id (that campaign's dials may not). Entries come from
the API, a CSV import, or a callee who asked the agent not to be called again
(the ``opt_out`` tool), or a campaign call's disposition. Adding a number
twice is not an error: the first entry stands.

The list is read where a number is dialled, not only where it is entered:
``blocked`` is asked when a call is requested (``switchboard.calls.outbound``),
when a batch is uploaded, and again by the job that places each call
(``switchboard.telephony.dial``), since a number may be listed after its call
was queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db.base import new_id, utcnow
from switchboard.db.models import Campaign, DncEntry
from switchboard.db.owned import get_owned
from switchboard.dialer.csv_file import EXTRA, TOO_MANY_CELLS, BadRow, records
from switchboard.errors import InvalidInput, NotFound
from switchboard.phone import to_e164

WORKSPACE = "workspace"  # the scope of an entry every dial of the workspace honours
END_REASON = "dnc"  # a call refused at dial time ends failed with this reason
MAX_REASON_CHARS = 300
NUMBER_COLUMNS = ("number", "phone")
REASON_COLUMN = "reason"
_CHUNK = 100  # rows per INSERT or IN (...): well under SQLite's 999 bound parameters


class DncSource(StrEnum):
    """Where an entry came from."""

    API = "api"
    CSV = "csv"
    OPT_OUT = "opt_out"  # the callee asked the agent, on the call ``call_id``
    DISPOSITION = "disposition"  # a campaign call's disposition said so


def dnc_number(raw: str) -> str:
    """``raw`` in E.164: a real number as ``phonenumbers`` formats it, or a test number
    (simulator, browser) in E.164's shape. ``ValueError`` for anything else."""
    try:
        return to_e164(raw)
    except ValueError:
        return to_e164(raw, strict=False)


async def checked_scope(session: AsyncSession, workspace_id: str, scope: str | None) -> str:
    """``scope`` if it is ``"workspace"`` (the default) or a campaign of the workspace;
    ``NotFound`` naming ``scope`` otherwise (another workspace's campaign looks absent)."""
    if scope is None or scope == WORKSPACE:
        return WORKSPACE
    found = await session.scalar(
        select(Campaign.id).where(Campaign.id == scope, Campaign.workspace_id == workspace_id)
    )
    if found is None:
        raise NotFound("campaign", scope, field="scope")
    return scope


async def add_number(
    session: AsyncSession,
    workspace_id: str,
    number: str,
    *,
    scope: str = WORKSPACE,
    source: str = DncSource.API,
    reason: str = "",
    call_id: str | None = None,
) -> tuple[DncEntry, bool]:
    """List ``number`` (already normalised) under ``scope`` (already checked); the entry,
    and whether it is new. An entry already there is returned unchanged."""
    created = await _insert_missing(
        session,
        [_values(workspace_id, scope, number, source, reason, call_id)],
    )
    await session.commit()
    entry = await session.scalar(
        select(DncEntry).where(
            DncEntry.workspace_id == workspace_id,
            DncEntry.scope == scope,
            DncEntry.number == number,
        )
    )
    assert entry is not None  # inserted just now, or already there
    return entry, bool(created)


async def get_entry(session: AsyncSession, workspace_id: str, entry_id: str) -> DncEntry:
    return await get_owned(session, DncEntry, workspace_id, entry_id, "dnc entry")


async def remove_entry(session: AsyncSession, workspace_id: str, entry_id: str) -> None:
    """Take one entry off the list: its number may be dialled again (in its scope)."""
    entry = await get_entry(session, workspace_id, entry_id)
    await session.delete(entry)
    await session.commit()


async def list_entries(
    session: AsyncSession,
    workspace_id: str,
    *,
    limit: int,
    after: str | None,
    scope: str | None = None,
    number: str | None = None,
) -> list[DncEntry]:
    """Entries in the order they were added (ids are time-ordered), after the id ``after``."""
    query = select(DncEntry).where(DncEntry.workspace_id == workspace_id)
    if scope is not None:
        query = query.where(DncEntry.scope == scope)
    if number is not None:
        query = query.where(DncEntry.number == number)
    if after:
        query = query.where(DncEntry.id > after)
    return list(await session.scalars(query.order_by(DncEntry.id).limit(limit)))


async def blocked(
    session: AsyncSession, workspace_id: str, number: str, campaign_id: str | None = None
) -> DncEntry | None:
    """The entry that forbids dialling ``number``: a workspace-wide one (which blocks
    every dial), else one of ``campaign_id`` (which blocks that campaign's); None if the
    number may be dialled."""
    scopes = [WORKSPACE] if campaign_id is None else [WORKSPACE, campaign_id]
    entry: DncEntry | None = await session.scalar(
        select(DncEntry)
        .where(
            DncEntry.workspace_id == workspace_id,
            DncEntry.number == _lookup_form(number),
            DncEntry.scope.in_(scopes),
        )
        .order_by(case((DncEntry.scope == WORKSPACE, 0), else_=1))
        .limit(1)
    )
    return entry


async def blocked_numbers(
    session: AsyncSession,
    workspace_id: str,
    numbers: Iterable[str],
    campaign_id: str | None = None,
) -> set[str]:
    """Which of ``numbers`` (E.164) may not be dialled, as ``blocked`` decides for each."""
    scopes = [WORKSPACE] if campaign_id is None else [WORKSPACE, campaign_id]
    wanted = sorted(set(numbers))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        found.update(
            await session.scalars(
                select(DncEntry.number).where(
                    DncEntry.workspace_id == workspace_id,
                    DncEntry.scope.in_(scopes),
                    DncEntry.number.in_(wanted[start : start + _CHUNK]),
                )
            )
        )
    return found


# -- CSV import --------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did: rows read, entries added, numbers already listed (before, or
    higher up the file), and each bad row with its line and reason."""

    scope: str
    rows: int = 0
    added: int = 0
    already_listed: int = 0
    row_errors: list[BadRow] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    number: str
    reason: str


async def import_csv(
    session: AsyncSession, workspace_id: str, data: bytes, *, scope: str
) -> ImportReport:
    """List every good row of ``data`` under ``scope`` (already checked); bad rows are
    reported, not listed. ``InvalidInput`` (field ``file``) when the file cannot be read
    as a whole or holds no usable row."""
    rows, report = _read_csv(data, scope)
    if not rows:
        first = report.row_errors[0] if report.row_errors else None
        raise InvalidInput(
            f"no row can be listed ({len(report.row_errors)} bad rows; the first: line"
            f" {first.line}: {first.reason})"
            if first
            else "the CSV has no rows",
            field="file",
        )
    unique = {row.number: row for row in reversed(rows)}  # the first line of each number
    report.already_listed = len(rows) - len(unique)
    created = await _insert_missing(
        session,
        [
            _values(workspace_id, scope, row.number, DncSource.CSV, row.reason, None)
            for row in sorted(unique.values(), key=lambda r: r.line)
        ],
    )
    await session.commit()
    report.added = created
    report.already_listed += len(unique) - created
    return report


def _read_csv(data: bytes, scope: str) -> tuple[list[_Row], ImportReport]:
    report = ImportReport(scope=scope)
    rows: list[_Row] = []
    for line, cells in records(data, any_of=NUMBER_COLUMNS):
        report.rows += 1
        row = _read_row(line, cells)
        if isinstance(row, BadRow):
            report.row_errors.append(row)
        else:
            rows.append(row)
    return rows, report


def _read_row(line: int, cells: dict[str, str]) -> _Row | BadRow:
    if EXTRA in cells:
        return BadRow(line, TOO_MANY_CELLS)
    column = next(name for name in NUMBER_COLUMNS if name in cells)
    raw = cells[column]
    if not raw:
        return BadRow(line, "no number", column)
    try:
        number = dnc_number(raw)
    except ValueError as exc:
        return BadRow(line, str(exc), column)
    reason = cells.get(REASON_COLUMN, "")
    if len(reason) > MAX_REASON_CHARS:
        return BadRow(line, f"longer than {MAX_REASON_CHARS} characters", REASON_COLUMN)
    return _Row(line, number, reason)


# -- storage -----------------------------------------------------------------------------


def _values(
    workspace_id: str,
    scope: str,
    number: str,
    source: str,
    reason: str,
    call_id: str | None,
) -> dict[str, Any]:
    return {
        "id": new_id("dnc"),
        "workspace_id": workspace_id,
        "scope": scope,
        "number": number,
        "source": str(source),
        "reason": reason[:MAX_REASON_CHARS],
        "call_id": call_id,
        "created_at": utcnow(),
    }


async def _insert_missing(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the ``rows`` not listed yet (one conflict-free statement per chunk, so two
    writers adding the same number at once both succeed); how many were new."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = 0
    for start in range(0, len(rows), _CHUNK):
        statement = (
            insert(DncEntry)
            .values(list(rows[start : start + _CHUNK]))
            .on_conflict_do_nothing(index_elements=["workspace_id", "scope", "number"])
            .returning(DncEntry.id)
        )
        created += len((await session.execute(statement)).scalars().all())
    return created


def _lookup_form(number: str) -> str:
    """``number`` as entries store it; a number that cannot be normalised is looked up as
    given (no entry can match it, since every entry is normalised)."""
    try:
        return dnc_number(number)
    except ValueError:
        return number.strip()
