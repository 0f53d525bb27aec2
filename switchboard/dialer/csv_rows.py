"""A batch's CSV, row by row: good rows kept, each bad one reported with its line and reason.

Columns: ``phone`` (required), ``timezone`` (optional, an IANA zone), and any
others, which are the agent's variables for that row (a number or boolean
variable is read from its text). A file that is not UTF-8 CSV, has no
``phone`` column, or holds too many rows is refused as a whole; a row with a
bad number, zone or variable, a number already listed above it, or a number
on the do-not-call list (``set_aside``), is reported and skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from switchboard.agents.schema import AgentConfig
from switchboard.calls.outbound import callee_number, checked_variables
from switchboard.dialer.csv_file import (
    EXTRA,
    PHONE,
    TIMEZONE,
    TOO_MANY_CELLS,
    BadRow,
    records,
    typed_variables,
)
from switchboard.dialer.zones import load_zone
from switchboard.errors import InvalidInput
from switchboard.telephony.carrier import Carrier

ON_DNC = "on the do-not-call list"


@dataclass(frozen=True)
class GoodRow:
    line: int
    phone: str
    variables: dict[str, Any]
    timezone: str | None


def read_rows(
    data: bytes, config: AgentConfig, carrier: type[Carrier]
) -> tuple[list[GoodRow], list[BadRow]]:
    """The rows of ``data``; ``InvalidInput`` (field ``file``) if it cannot be read at all."""
    good: list[GoodRow] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    for line, cells in records(data):
        row = _read_row(line, cells, config, carrier)
        if isinstance(row, GoodRow) and row.phone in seen:
            row = BadRow(line, f"duplicate of line {seen[row.phone]}", PHONE)
        if isinstance(row, GoodRow):
            seen[row.phone] = line
            good.append(row)
        else:
            bad.append(row)
    return good, bad


def set_aside(
    good: list[GoodRow], bad: list[BadRow], listed: Collection[str], reason: str = ON_DNC
) -> tuple[list[GoodRow], list[BadRow]]:
    """``good`` without the rows whose phone is in ``listed``, which join ``bad`` (in line
    order) with ``reason``."""
    kept = [row for row in good if row.phone not in listed]
    refused = [BadRow(row.line, reason, PHONE) for row in good if row.phone in listed]
    return kept, sorted(bad + refused, key=lambda row: row.line)


def _read_row(
    line: int, cells: dict[str, str], config: AgentConfig, carrier: type[Carrier]
) -> GoodRow | BadRow:
    if EXTRA in cells:
        return BadRow(line, TOO_MANY_CELLS)
    try:
        phone = callee_number(cells.pop(PHONE, ""), carrier)
    except InvalidInput as exc:
        return BadRow(line, exc.message, PHONE)
    zone = cells.pop(TIMEZONE, "") or None
    try:
        if zone is not None:
            load_zone(zone)
        variables = checked_variables(config, typed_variables(config.variables, cells))
    except InvalidInput as exc:
        return BadRow(line, exc.message, exc.field)
    return GoodRow(line, phone, variables, zone)
