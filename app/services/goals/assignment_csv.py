"""The goal-assignment CSV that admins upload to assign goals to users in bulk (pure, no I/O).

The format:

- UTF-8, a byte-order mark allowed; comma-separated, fields quoted with `"` as csv.writer
  writes them; lines end in LF, CRLF or CR.
- The first non-blank line is the header. It names the columns `user_id` and `goal_id`
  (required) and `starts_at`, `ends_at` (optional), in any order; names are trimmed and
  case-insensitive. Any other column, a nameless one or a repeated one refuses the file.
- Then one row per assignment; values are trimmed. Blank lines, and rows whose fields are all
  empty (as spreadsheets export), are skipped. Every row has as many fields as the header.

      user_id,goal_id,starts_at,ends_at
      0b9d6d52-5b1c-4d8e-9a8e-1c6f3a1d2e4f,comfort-5,2025-03-01T09:00:00+03:00,2025-04-01
      6a0c2f0e-3d4b-4c1f-8f3e-2b7d9e5a1c3d,weekly-rides,,

- `user_id`: a UUID. `goal_id`: a goal template id, a slug `^[a-z0-9][a-z0-9-]{0,63}$`.
- `starts_at`, `ends_at`: empty, an ISO 8601 time WITH an offset (`2025-03-01T09:00:00+03:00`,
  `…Z`), or a plain date `YYYY-MM-DD`, which means midnight UTC that day; times are
  normalised to UTC. Either may be given alone: `starts_at` alone starts the goal then for its
  template's period, `ends_at` alone is a custom deadline. With both, `ends_at` must be after
  `starts_at`.

Codes are `AssignErrorCode` members (`codes.py`), one enum for the whole upload.
`parse_assignment_csv` raises `DomainError(AssignErrorCode.X, message, field="file")` for
a file it can't take as a whole: undecodable bytes, broken quoting or a row with the wrong
number of fields (MALFORMED_CSV, naming the line), no header or no rows (EMPTY_FILE), more
than `max_rows` rows (TOO_MANY_ROWS), a required column missing (MISSING_COLUMN) or an unknown
one (UNKNOWN_COLUMN). Otherwise every row comes back as a `CsvRow` with its line number
(the header is line 1 unless blank lines precede it; a quoted value spanning lines counts
them all), its parsed values and, when it can't be assigned, an error code and a message that
names the column. A row with an error keeps the values that did parse, for the report. A row
repeating the (user_id, goal_id) of an earlier valid row is DUPLICATE_ROW; the first is kept.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from app.services.errors import DomainError
from app.services.goals.codes import AssignErrorCode

__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_ROWS",
    "REQUIRED_COLUMNS",
    "CsvRow",
    "ParsedCsv",
    "parse_assignment_csv",
]

DEFAULT_MAX_ROWS = 10_000
REQUIRED_COLUMNS = ("user_id", "goal_id")
COLUMNS = (*REQUIRED_COLUMNS, "starts_at", "ends_at")
FILE_FIELD = "file"

_GOAL_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # as goal template ids
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SHOWN_VALUE_LENGTH = 40
Code = AssignErrorCode


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # 1-based line in the file where the row starts
    user_id: uuid.UUID | None = None
    goal_id: str | None = None
    starts_at: datetime | None = None  # UTC
    ends_at: datetime | None = None  # UTC
    error: AssignErrorCode | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    rows: list[CsvRow]
    content_hash: str  # sha256 hex digest of the uploaded bytes


class _RowProblem(Exception):
    def __init__(self, error: AssignErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def parse_assignment_csv(data: bytes, *, max_rows: int = DEFAULT_MAX_ROWS) -> ParsedCsv:
    """Every data row of the file, each valid or with its error; raises DomainError for a
    file that can't be read as a whole (see the module docstring)."""
    records = _records(_decode(data))
    header = next(records, None)
    if header is None:
        raise _file_error(Code.EMPTY_FILE, "The file is empty.")
    columns = _read_header(header[1])
    rows = _mark_duplicates(_read_rows(records, columns, len(header[1]), max_rows))
    if not rows:
        raise _file_error(Code.EMPTY_FILE, "The file has a header but no rows.")
    return ParsedCsv(rows=rows, content_hash=hashlib.sha256(data).hexdigest())


def _file_error(code: AssignErrorCode, message: str) -> DomainError:
    return DomainError(code, message, FILE_FIELD)


def _decode(data: bytes) -> str:
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise _file_error(Code.MALFORMED_CSV, f"Line {line} is not valid UTF-8.") from exc


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _file_error(
                Code.MALFORMED_CSV, f"Line {line} can't be read as CSV: {exc}."
            ) from exc
        if any(field.strip() for field in fields):
            yield line, fields


def _read_header(fields: Sequence[str]) -> dict[str, int]:
    """Column name -> field index."""
    columns: dict[str, int] = {}
    for index, raw in enumerate(fields):
        name = raw.strip().lower()
        if not name:
            raise _file_error(Code.UNKNOWN_COLUMN, f"Column {index + 1} of the header has no name.")
        if name not in COLUMNS:
            raise _file_error(
                Code.UNKNOWN_COLUMN,
                f"Unknown column {raw.strip()!r}; the columns are {', '.join(COLUMNS)}.",
            )
        if name in columns:
            raise _file_error(Code.MALFORMED_CSV, f"The header names {name!r} twice.")
        columns[name] = index
    if missing := [name for name in REQUIRED_COLUMNS if name not in columns]:
        raise _file_error(
            Code.MISSING_COLUMN,
            f"The header lacks the column(s) {', '.join(missing)}.",
        )
    return columns


def _read_rows(
    records: Iterator[tuple[int, list[str]]], columns: dict[str, int], width: int, max_rows: int
) -> list[CsvRow]:
    rows: list[CsvRow] = []
    for line, fields in records:
        if len(fields) != width:
            raise _file_error(
                Code.MALFORMED_CSV,
                f"Line {line} has {len(fields)} fields; the header has {width}.",
            )
        if len(rows) == max_rows:
            raise _file_error(
                Code.TOO_MANY_ROWS,
                f"The file has more than {max_rows} rows; split it into smaller files.",
            )
        values = {name: fields[index].strip() for name, index in columns.items()}
        rows.append(_read_row(line, values))
    return rows


def _read_row(line: int, values: dict[str, str]) -> CsvRow:
    row = CsvRow(line)
    try:
        row = replace(row, user_id=_read_user_id(values["user_id"]))
        row = replace(row, goal_id=_read_goal_id(values["goal_id"]))
        row = replace(row, starts_at=_read_moment(values.get("starts_at", ""), "starts_at"))
        row = replace(row, ends_at=_read_moment(values.get("ends_at", ""), "ends_at"))
        _check_order(row.starts_at, row.ends_at)
    except _RowProblem as problem:
        return replace(row, error=problem.error, message=problem.message)
    return row


def _shown(value: str) -> str:
    if len(value) > _SHOWN_VALUE_LENGTH:
        value = value[: _SHOWN_VALUE_LENGTH - 1] + "…"
    return repr(value)


def _read_user_id(value: str) -> uuid.UUID:
    if not value:
        raise _RowProblem(Code.INVALID_USER_ID, "user_id is empty.")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _RowProblem(Code.INVALID_USER_ID, f"user_id {_shown(value)} is not a UUID.") from exc


def _read_goal_id(value: str) -> str:
    if not value:
        raise _RowProblem(Code.INVALID_GOAL_ID, "goal_id is empty.")
    if not _GOAL_ID.fullmatch(value):
        raise _RowProblem(
            Code.INVALID_GOAL_ID,
            f"goal_id {_shown(value)} is not a goal template id: lower-case letters, digits "
            "and hyphens, at most 64, such as comfort-5.",
        )
    return value


def _read_moment(value: str, column: str) -> datetime | None:
    """None for an empty value; a plain date is midnight UTC; times need an offset."""
    if not value:
        return None
    try:
        if _PLAIN_DATE.fullmatch(value):
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise _RowProblem(
        Code.INVALID_DATE,
        f"{column} {_shown(value)} is not a date (2025-03-01) or a time with an offset "
        "(2025-03-01T09:00:00+03:00).",
    )


def _check_order(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise _RowProblem(Code.END_BEFORE_START, "ends_at must be after starts_at.")


def _mark_duplicates(rows: list[CsvRow]) -> list[CsvRow]:
    first_line: dict[tuple[uuid.UUID | None, str | None], int] = {}
    marked: list[CsvRow] = []
    for row in rows:
        key = (row.user_id, row.goal_id)
        if row.ok and key in first_line:
            row = replace(
                row,
                error=Code.DUPLICATE_ROW,
                message=f"user_id and goal_id repeat line {first_line[key]}.",
            )
        elif row.ok:
            first_line[key] = row.line
        marked.append(row)
    return marked
