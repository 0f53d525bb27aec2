"""A batch's CSV, row by row: good rows kept, each bad one reported with its line and reason.

Columns: ``phone`` (required), ``timezone`` (optional, an IANA zone), and any
others, which are the agent's variables for that row (a number or boolean
variable is read from its text). A file that is not UTF-8 CSV, has no
``phone`` column, or holds too many rows is refused as a whole; a row with a
bad number, zone or variable, or a number already listed above it, is
reported and skipped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard.agents.schema import AgentConfig
from switchboard.calls.outbound import callee_number, checked_variables
from switchboard.errors import InvalidInput
from switchboard.telephony.carrier import Carrier

MAX_ROWS = 10_000
PHONE = "phone"
TIMEZONE = "timezone"
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


@dataclass(frozen=True)
class GoodRow:
    line: int
    phone: str
    variables: dict[str, Any]
    timezone: str | None


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "field": self.field}


def read_rows(
    data: bytes, config: AgentConfig, carrier: type[Carrier]
) -> tuple[list[GoodRow], list[BadRow]]:
    """The rows of ``data``; ``InvalidInput`` (field ``file``) if it cannot be read at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is not UTF-8 text", field="file") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
    except csv.Error as exc:
        raise InvalidInput(f"the file is not CSV: {exc}", field="file") from exc
    if PHONE not in header:
        raise InvalidInput("the CSV has no 'phone' column", field="file")
    reader.fieldnames = header
    good: list[GoodRow] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if len(good) + len(bad) >= MAX_ROWS:
                raise InvalidInput(f"the CSV has more than {MAX_ROWS} rows", field="file")
            row = _read_row(line, record, config, carrier)
            if isinstance(row, GoodRow) and row.phone in seen:
                row = BadRow(line, f"duplicate of line {seen[row.phone]}", PHONE)
            if isinstance(row, GoodRow):
                seen[row.phone] = line
                good.append(row)
            else:
                bad.append(row)
    except csv.Error as exc:
        raise InvalidInput(
            f"the file is not CSV (line {reader.line_num}): {exc}", field="file"
        ) from exc
    return good, bad


def _read_row(
    line: int, record: dict[str | Any, Any], config: AgentConfig, carrier: type[Carrier]
) -> GoodRow | BadRow:
    if None in record:  # more cells than the header has columns
        return BadRow(line, "more cells than the header has columns")
    cells = {str(k): (v or "").strip() for k, v in record.items()}
    try:
        phone = callee_number(cells.pop(PHONE, ""), carrier)
    except InvalidInput as exc:
        return BadRow(line, exc.message, PHONE)
    zone = cells.pop(TIMEZONE, "") or None
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return BadRow(line, f"unknown time zone {zone[:64]!r}", TIMEZONE)
    try:
        variables = checked_variables(config, _typed(config, cells))
    except InvalidInput as exc:
        return BadRow(line, exc.message, exc.field)
    return GoodRow(line, phone, variables, zone)


def _typed(config: AgentConfig, cells: dict[str, str]) -> dict[str, Any]:
    """Cells as the types their variables declare; empty cells left out (defaults apply)."""
    values: dict[str, Any] = {}
    for name, text in cells.items():
        if not text:
            continue
        spec = config.variables.get(name)
        value: Any = text
        if spec is not None and spec.type == "number":
            try:
                value = float(text)
            except ValueError:
                value = text  # refused below, naming the variable
        elif spec is not None and spec.type == "boolean":
            value = True if text.lower() in _TRUE else False if text.lower() in _FALSE else text
        values[name] = value
    return values
