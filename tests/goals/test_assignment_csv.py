"""The goal-assignment CSV: file errors, row errors with line numbers, and a round trip."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.errors import DomainError
from app.services.goals.assignment_csv import CsvRow, parse_assignment_csv
from app.services.goals.codes import AssignErrorCode

Code = AssignErrorCode

USER = uuid.UUID("0b9d6d52-5b1c-4d8e-9a8e-1c6f3a1d2e4f")
OTHER = uuid.UUID("6a0c2f0e-3d4b-4c1f-8f3e-2b7d9e5a1c3d")


def parse(text: str, **kwargs: int) -> list[CsvRow]:
    return parse_assignment_csv(text.encode(), **kwargs).rows


def file_error(data: bytes | str, **kwargs: int) -> DomainError:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(DomainError) as caught:
        parse_assignment_csv(raw, **kwargs)
    assert caught.value.field == "file"
    return caught.value


def only_row(text: str) -> CsvRow:
    rows = parse(text)
    assert len(rows) == 1
    return rows[0]


# --- valid files -------------------------------------------------------------------------


def test_a_minimal_file() -> None:
    data = f"user_id,goal_id\n{USER},comfort-5\n".encode()
    parsed = parse_assignment_csv(data)
    assert parsed.rows == [CsvRow(line=2, user_id=USER, goal_id="comfort-5")]
    assert parsed.content_hash == hashlib.sha256(data).hexdigest()
    assert parsed.rows[0].ok


def test_all_columns_in_any_order_with_case_insensitive_trimmed_names() -> None:
    row = only_row(
        f" Ends_At ,GOAL_ID,starts_at , User_Id\n2025-04-01 , weekly-rides ,2025-03-01, {USER} \n"
    )
    assert row == CsvRow(
        line=2,
        user_id=USER,
        goal_id="weekly-rides",
        starts_at=datetime(2025, 3, 1, tzinfo=UTC),
        ends_at=datetime(2025, 4, 1, tzinfo=UTC),
    )


def test_a_byte_order_mark_is_allowed() -> None:
    data = b"\xef\xbb\xbf" + f"user_id,goal_id\r\n{USER},comfort-5\r\n".encode()
    assert parse_assignment_csv(data).rows == [CsvRow(2, USER, "comfort-5")]


def test_blank_lines_are_skipped_and_lines_still_count() -> None:
    rows = parse(f"\nuser_id,goal_id,starts_at\n\n{USER},a,\n  \n,,\n{OTHER},b,\n\n")
    assert [(row.line, row.user_id, row.goal_id) for row in rows] == [
        (4, USER, "a"),
        (7, OTHER, "b"),
    ]


def test_a_quoted_value_over_two_lines_counts_both() -> None:
    rows = parse(f'user_id,goal_id\n"{USER}",comfort-5\n"bad\nid",x\n{OTHER},comfort-5\n')
    assert [row.line for row in rows] == [2, 3, 5]
    assert rows[1].error is Code.INVALID_USER_ID


def test_times_with_offsets_become_utc_and_plain_dates_are_midnight_utc() -> None:
    row = only_row(
        f"user_id,goal_id,starts_at,ends_at\n{USER},g,2025-03-01T09:00:00+03:00,2025-03-02\n"
    )
    assert row.starts_at == datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
    assert row.starts_at is not None and row.starts_at.tzinfo is UTC
    assert row.ends_at == datetime(2025, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T00:00:00Z", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T23:30:00-05:00", datetime(2025, 3, 2, 4, 30, tzinfo=UTC)),
        ("2025-03-01 10:00+01:00", datetime(2025, 3, 1, 9, 0, tzinfo=UTC)),
        ("2025-03-01T10:00:00.250+00:00", datetime(2025, 3, 1, 10, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_iso_times_with_an_offset(value: str, expected: datetime) -> None:
    assert only_row(f"user_id,goal_id,starts_at\n{USER},g,{value}\n").starts_at == expected


def test_either_date_may_be_given_alone() -> None:
    rows = parse(f"user_id,goal_id,starts_at,ends_at\n{USER},a,2025-03-01,\n{USER},b,,2025-03-01\n")
    assert (rows[0].starts_at, rows[0].ends_at) == (datetime(2025, 3, 1, tzinfo=UTC), None)
    assert (rows[1].starts_at, rows[1].ends_at) == (None, datetime(2025, 3, 1, tzinfo=UTC))
    assert all(row.ok for row in rows)


def test_uuids_are_read_in_any_standard_spelling() -> None:
    rows = parse(f"user_id,goal_id\n{str(USER).upper()},a\n{USER.hex},b\n{{{USER}}},c\n")
    assert [row.user_id for row in rows] == [USER, USER, USER]


def test_the_line_ending_may_be_lf_crlf_or_cr() -> None:
    for newline in ("\n", "\r\n", "\r"):
        lines = ["user_id,goal_id,ends_at", f"{USER},a,2025-04-01", f"{OTHER},b-2,"]
        rows = parse(newline.join(lines) + newline)
        assert rows == [
            CsvRow(
                line=2,
                user_id=USER,
                goal_id="a",
                ends_at=datetime(2025, 4, 1, tzinfo=UTC),
            ),
            CsvRow(line=3, user_id=OTHER, goal_id="b-2"),
        ], repr(newline)


# --- row errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "goal_id", "error", "message"),
    [
        ("", "comfort-5", Code.INVALID_USER_ID, "user_id is empty"),
        ("42", "comfort-5", Code.INVALID_USER_ID, "user_id '42' is not a UUID"),
        (str(USER), "", Code.INVALID_GOAL_ID, "goal_id is empty"),
        (str(USER), "Comfort-5", Code.INVALID_GOAL_ID, "goal_id 'Comfort-5' is not"),
        (str(USER), "-comfort", Code.INVALID_GOAL_ID, "goal_id"),
        (str(USER), "comfort_5", Code.INVALID_GOAL_ID, "goal_id"),
        (str(USER), "a" * 65, Code.INVALID_GOAL_ID, "goal_id"),
    ],
)
def test_invalid_ids(user_id: str, goal_id: str, error: AssignErrorCode, message: str) -> None:
    row = only_row(f"user_id,goal_id\n{user_id},{goal_id}\n")
    assert row.error is error
    assert row.message is not None and message in row.message
    assert not row.ok


def test_a_64_character_goal_id_is_valid() -> None:
    assert only_row(f"user_id,goal_id\n{USER},{'a' * 64}\n").ok


def test_a_row_error_keeps_the_values_that_parsed() -> None:
    row = only_row(f"user_id,goal_id,ends_at\n{USER},comfort-5,tomorrow\n")
    assert (row.user_id, row.goal_id, row.ends_at) == (USER, "comfort-5", None)
    assert row.error is Code.INVALID_DATE
    assert row.message is not None and row.message.startswith("ends_at 'tomorrow'")


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-01T09:00:00",  # no offset
        "2025-02-30",
        "01.03.2025",
        "20250301",  # basic ISO date: naive
        "0001-01-01T00:00:00+05:00",  # before the first representable UTC time
        "now",
    ],
)
def test_invalid_dates(value: str) -> None:
    row = only_row(f"user_id,goal_id,starts_at\n{USER},g,{value}\n")
    assert row.error is Code.INVALID_DATE
    assert row.message is not None and row.message.startswith("starts_at ")


def test_the_first_bad_column_is_reported() -> None:
    row = only_row("user_id,goal_id,starts_at\nnope,NOPE,never\n")
    assert row.error is Code.INVALID_USER_ID


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        ("2025-03-02", "2025-03-01"),
        ("2025-03-01", "2025-03-01T00:00:00Z"),
        ("2025-03-01T03:00:00+03:00", "2025-03-01"),
    ],
)
def test_ends_at_must_be_after_starts_at(starts_at: str, ends_at: str) -> None:
    row = only_row(f"user_id,goal_id,starts_at,ends_at\n{USER},g,{starts_at},{ends_at}\n")
    assert row.error is Code.END_BEFORE_START
    assert row.message == "ends_at must be after starts_at."


def test_a_repeated_user_and_goal_is_a_duplicate_and_the_first_is_kept() -> None:
    rows = parse(
        "user_id,goal_id,starts_at\n"
        f"{USER},a,bad-date\n"  # invalid: does not count as the first occurrence
        f"{USER},a,\n"
        f"{OTHER},a,\n"
        f"{USER},b,\n"
        f"{USER.hex},a,2025-03-01\n"
    )
    assert [row.error for row in rows] == [
        Code.INVALID_DATE,
        None,
        None,
        None,
        Code.DUPLICATE_ROW,
    ]
    assert rows[4].message == "user_id and goal_id repeat line 3."
    assert (rows[4].user_id, rows[4].goal_id) == (USER, "a")


# --- file errors -------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["", "\n\n", "\ufeff", "  \r\n,,\r\n"])
def test_an_empty_file(data: str) -> None:
    error = file_error(data)
    assert error.code is Code.EMPTY_FILE
    assert error.message == "The file is empty."


def test_a_header_without_rows() -> None:
    error = file_error("user_id,goal_id\n\n")
    assert error.code is Code.EMPTY_FILE
    assert "no rows" in error.message


@pytest.mark.parametrize(
    ("header", "missing"),
    [("user_id", "goal_id"), ("goal_id,starts_at", "user_id"), ("starts_at", "user_id, goal_id")],
)
def test_a_missing_column(header: str, missing: str) -> None:
    error = file_error(f"{header}\nx\n")
    assert error.code is Code.MISSING_COLUMN
    assert error.message.endswith(f"{missing}.")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("user_id,goal_id,note", "Unknown column 'note'"),
        ("user_id,goal_id,", "Column 3 of the header has no name"),
        ("user_id,goal,ends_at", "Unknown column 'goal'"),
    ],
)
def test_an_unknown_column(header: str, message: str) -> None:
    error = file_error(f"{header}\n{USER},a,b\n")
    assert error.code is Code.UNKNOWN_COLUMN
    assert message in error.message


def test_a_repeated_column() -> None:
    error = file_error(f"user_id,goal_id,USER_ID\n{USER},a,{USER}\n")
    assert error.code is Code.MALFORMED_CSV
    assert "twice" in error.message


@pytest.mark.parametrize(("fields", "count"), [(f"{USER},a,2025-03-01", 3), (f"{USER}", 1)])
def test_a_row_with_the_wrong_number_of_fields_names_its_line(fields: str, count: int) -> None:
    error = file_error(f"user_id,goal_id\n{OTHER},b\n\n{fields}\n")
    assert error.code is Code.MALFORMED_CSV
    assert error.message == f"Line 4 has {count} fields; the header has 2."


def test_undecodable_bytes_name_their_line() -> None:
    error = file_error(b"\xef\xbb\xbfuser_id,goal_id\n" + str(USER).encode() + b",caf\xe9\n")
    assert error.code is Code.MALFORMED_CSV
    assert error.message == "Line 2 is not valid UTF-8."


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f'user_id,goal_id\n{USER},"a"b\n', 2),  # text after a closing quote
        (f'user_id,goal_id\n{OTHER},b\n{USER},"unterminated\n\n', 3),
    ],
)
def test_unparsable_csv_names_the_line(text: str, line: int) -> None:
    error = file_error(text)
    assert error.code is Code.MALFORMED_CSV
    assert error.message.startswith(f"Line {line} can't be read as CSV")


def test_the_row_cap() -> None:
    header = "user_id,goal_id\n"
    rows = "".join(f"{uuid.uuid4()},g\n" for _ in range(3))
    assert len(parse(header + rows, max_rows=3)) == 3
    assert len(parse(header + rows + "\n\n,\n", max_rows=3)) == 3  # blank lines don't count
    error = file_error(header + rows + f"{USER},g\n", max_rows=3)
    assert error.code is Code.TOO_MANY_ROWS
    assert "more than 3 rows" in error.message


def test_the_default_row_cap_is_10000() -> None:
    header = "user_id,goal_id\n"
    rows = f"{USER},g\n" * 10_000
    assert len(parse(header + rows)) == 10_000
    error = file_error(header + rows + f"{USER},g\n")
    assert error.code is Code.TOO_MANY_ROWS


# --- round trip --------------------------------------------------------------------------

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
goal_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,63}", fullmatch=True)


@st.composite
def valid_rows(
    draw: st.DrawFn,
) -> tuple[uuid.UUID, str, datetime | date | None, datetime | date | None]:
    user_id = draw(st.uuids())
    goal_id = draw(goal_ids)
    starts = draw(st.none() | moments | days)
    ends = draw(st.none() | moments | days)
    if starts is not None and ends is not None and _utc(ends) <= _utc(starts):
        starts, ends = None, ends
    return user_id, goal_id, starts, ends


def _utc(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


@given(
    st.lists(valid_rows(), min_size=1, max_size=25, unique_by=lambda row: (row[0], row[1])),
    st.permutations(["user_id", "goal_id", "starts_at", "ends_at"]),
)
def test_valid_rows_written_by_csv_writer_parse_back(
    rows: list[tuple[uuid.UUID, str, datetime | date | None, datetime | date | None]],
    header: list[str],
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for user_id, goal_id, starts, ends in rows:
        values = {
            "user_id": str(user_id),
            "goal_id": goal_id,
            "starts_at": "" if starts is None else starts.isoformat(),
            "ends_at": "" if ends is None else ends.isoformat(),
        }
        writer.writerow([values[name] for name in header])
    parsed = parse_assignment_csv(buffer.getvalue().encode())
    assert parsed.rows == [
        CsvRow(line, user_id, goal_id, _utc(starts), _utc(ends))
        for line, (user_id, goal_id, starts, ends) in enumerate(rows, start=2)
    ]
