"""Reading an uploaded CSV of numbers: the whole file is refused, or its rows are returned.

A file that is not UTF-8 CSV, has none of the columns asked for (``phone`` for
batches and prospects; ``number`` or ``phone`` for do-not-call imports) or
holds more than ``MAX_ROWS`` rows is refused with an ``InvalidInput`` naming
``file``. What each row means (a batch row, a prospect, a listed number) is
for the caller to check, row by row, reporting the bad ones as ``BadRow``s by
their line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from switchboard.errors import InvalidInput

MAX_ROWS = 10_000
PHONE = "phone"
TIMEZONE = "timezone"
EXTRA = "\0extra"  # the key of the cells beyond the header's columns
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


@dataclass(frozen=True)
class BadRow:
    """A row refused: its line in the file, why, and the column at fault."""

    line: int
    reason: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "field": self.field}


TOO_MANY_CELLS = "more cells than the header has columns"


def records(
    data: bytes, *, any_of: tuple[str, ...] = (PHONE,), max_rows: int = MAX_ROWS
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, cells)`` for each row, header names lower-cased, cells stripped.

    The header must name one of ``any_of``. A row with more cells than the header
    has columns comes back with the key ``EXTRA``, for the caller to report.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is not UTF-8 text", field="file") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=EXTRA)
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if not any(column in header for column in any_of):
            names = " or ".join(repr(column) for column in any_of)
            raise InvalidInput(f"the CSV has no {names} column", field="file")
        reader.fieldnames = header
        for count, record in enumerate(reader):
            if count >= max_rows:
                raise InvalidInput(f"the CSV has more than {max_rows} rows", field="file")
            cells = {
                str(k): (v.strip() if isinstance(v, str) else ",".join(v or []))
                for k, v in record.items()
            }
            yield reader.line_num, cells
    except csv.Error as exc:
        raise InvalidInput(
            f"the file is not CSV (line {reader.line_num}): {exc}", field="file"
        ) from exc


def typed_variables(declared: dict[str, Any], cells: dict[str, str]) -> dict[str, Any]:
    """Cells as the types their variables declare (``AgentConfig.variables``); empty cells
    left out, so defaults apply. A cell that is not of its type stays text, for the
    variable check to refuse naming it."""
    values: dict[str, Any] = {}
    for name, text in cells.items():
        if not text:
            continue
        spec = declared.get(name)
        value: Any = text
        if spec is not None and spec.type == "number":
            try:
                value = float(text)
            except ValueError:
                value = text
        elif spec is not None and spec.type == "boolean":
            value = True if text.lower() in _TRUE else False if text.lower() in _FALSE else text
        values[name] = value
    return values
