"""Promocodes in bulk: random codes, distinct from each other and from the database.

A code is a bearer secret (whoever knows it may use it), so:
- the random part is drawn from the operating system's CSPRNG (`secrets.SystemRandom`); tests
  may inject a seeded `random.Random` instead;
- a request may fill at most half of its code space (`capacity(length, charset) // 2`): a sparse
  space keeps collisions rare, so generation needs few retries, and a guessed code is unlikely
  to be a real one.

The default charset leaves out look-alikes (0/O, 1/I/L), so codes survive being read aloud or
typed from paper. Codes are stored normalised (`normalize_code`: trimmed, upper case), which
makes them unique case-insensitively; every lookup normalises its input the same way.

`generate` is pure. `insert_generated` inserts the codes in chunks with
`INSERT … ON CONFLICT (code) DO NOTHING RETURNING`, and draws replacements for the (rare)
codes that already existed, until the requested number is inserted. It never commits.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from random import Random
from typing import Any

from sqlalchemy import ARRAY, Column, Select, Table, func, literal, select, true
from sqlalchemy import values as values_clause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, FromClause, column
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.models.base import utcnow
from app.models.promocodes import Promocode, PromocodeKind, promocode_plans
from app.services.promocodes.pricing import validate_value

SAFE_CHARSET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_CODE_LENGTH = 64  # promocodes.code is VARCHAR(64)

# Template keys copied onto every generated row; `plan_ids` lists the eligible plans.
COPIED_COLUMNS = frozenset(
    {
        "kind",
        "value",
        "currency",
        "valid_from",
        "valid_until",
        "max_uses",
        "max_uses_per_user",
        "audience",
        "eligibility",
        "trial_days",
        "discounted_cycles",
        "description",
        "created_by",
    }
)
PLAN_IDS = "plan_ids"

# Rows per INSERT. Only `id` and `code` vary per row (two bound parameters each on SQLite,
# two arrays on PostgreSQL), so a chunk stays far below SQLite's 32,766 parameters.
CHUNK_ROWS = 5000
SQLITE_MAX_PARAMETERS = 32_766

_PREFIX = re.compile(r"[A-Z0-9-]*")
_SYMBOL = re.compile(r"[A-Z0-9]")
_SYSTEM_RANDOM = secrets.SystemRandom()

PROMOCODES: Table = Promocode.__table__  # type: ignore[assignment]


def normalize_code(text: str) -> str:
    """The stored form of a code: trimmed and upper case (codes match case-insensitively)."""
    return text.strip().upper()


# --- pure generation ---------------------------------------------------------------------


def _check_charset(charset: str) -> None:
    if len(charset) < 2:
        raise ValueError("the charset needs at least 2 symbols")
    if len(set(charset)) != len(charset):
        raise ValueError(f"the charset repeats a symbol: {charset!r}")
    if not all(_SYMBOL.fullmatch(symbol) for symbol in charset):
        # Anything else would be changed by normalize_code or be hard to type.
        raise ValueError(f"the charset may only hold A-Z and 0-9, got {charset!r}")


def capacity(length: int, charset: str) -> int:
    """How many distinct random parts of `length` symbols `charset` can make."""
    _check_charset(charset)
    if length < 1:
        raise ValueError(f"the random part needs at least 1 symbol, got length {length}")
    return len(charset) ** length


def _clean_prefix(prefix: str, length: int) -> str:
    cleaned = normalize_code(prefix)
    if not _PREFIX.fullmatch(cleaned):
        raise ValueError(f"the prefix may only hold A-Z, 0-9 and '-', got {prefix!r}")
    if len(cleaned) + length > MAX_CODE_LENGTH:
        raise ValueError(
            f"prefix ({len(cleaned)}) + length ({length}) exceeds {MAX_CODE_LENGTH} characters"
        )
    return cleaned


def _check_sparse(count: int, space: int) -> None:
    if count < 0:
        raise ValueError(f"the number of codes must not be negative, got {count}")
    if count * 2 > space:
        raise ValueError(
            f"{count} codes would fill more than half of the {space} possible codes: "
            "use a longer code or a larger charset"
        )


def _taken_in_space(taken: Iterable[str], prefix: str, length: int, charset: str) -> int:
    """How many of `taken` this request could have drawn (same prefix, length and charset)."""
    symbols = frozenset(charset)
    size = len(prefix) + length
    return sum(
        1
        for code in taken
        if len(code) == size and code.startswith(prefix) and symbols.issuperset(code[len(prefix) :])
    )


def _encode(index: int, length: int, charset: str) -> str:
    """`index` (0 <= index < len(charset) ** length) written in base len(charset)."""
    base = len(charset)
    symbols = []
    for _ in range(length):
        index, digit = divmod(index, base)
        symbols.append(charset[digit])
    return "".join(symbols)


def generate(
    count: int,
    *,
    length: int,
    prefix: str = "",
    charset: str = SAFE_CHARSET,
    taken: set[str] | None = None,
    rng: Random | None = None,
) -> list[str]:
    """`count` distinct codes `prefix + random part`, none of them in `taken`.

    The prefix is normalised (upper case); `taken` holds normalised codes. Raises ValueError
    for a bad prefix or charset, a code longer than MAX_CODE_LENGTH, a request for more than
    half of the space, or when `taken` leaves fewer than `count` free codes.
    """
    prefix = _clean_prefix(prefix, length)
    space = capacity(length, charset)
    _check_sparse(count, space)
    taken = taken or set()
    free = space - _taken_in_space(taken, prefix, length, charset)
    if count > free:
        raise ValueError(f"only {free} of the {space} possible codes are free, {count} requested")
    draw = (rng or _SYSTEM_RANDOM).randrange  # one unbiased draw per code
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = prefix + _encode(draw(space), length, charset)
        if code not in taken and code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


# --- inserting into the database ---------------------------------------------------------


def _scalar_default(col: Column[Any]) -> Any:
    """The column's Python-side constant default (`default=0`), else None."""
    default = col.default
    return default.arg if isinstance(default, ScalarElementColumnDefault) else None


def _constant_values(template: Mapping[str, Any], batch_id: uuid.UUID) -> dict[str, Any]:
    """The value of every promocodes column except `id` and `code`, the same on every row."""
    unknown = set(template) - COPIED_COLUMNS - {PLAN_IDS}
    if unknown:
        raise ValueError(f"the template has fields that are not copied: {sorted(unknown)}")
    if "kind" not in template:
        raise ValueError("the template needs a kind")
    kind = PromocodeKind(template["kind"])
    validate_value(kind, template.get("value", 0))
    now = utcnow()
    defaults = {
        col.name: _scalar_default(col)
        for col in PROMOCODES.columns
        if col.name not in ("id", "code")
    }
    copied = {name: value for name, value in template.items() if name != PLAN_IDS}
    fixed = {"kind": kind, "uses": 0, "active": True, "batch_id": batch_id}
    return defaults | copied | fixed | {"created_at": now, "updated_at": now}


def _plan_ids(template: Mapping[str, Any]) -> list[uuid.UUID]:
    return list(dict.fromkeys(uuid.UUID(str(plan)) for plan in template.get(PLAN_IDS) or ()))


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows_source(dialect: str, columns: Sequence[Column[Any]], data: list[list[Any]]) -> FromClause:
    """A FROM clause of rows (`data` holds one list per column, named like `columns`).

    PostgreSQL: `unnest` of one array per column, i.e. a single parameter per column however
    many rows. SQLite: a `WITH src(...) AS (VALUES …)` CTE, one parameter per value.
    """
    if dialect == "postgresql":
        arrays = [
            literal(values, type_=ARRAY(col.type))
            for col, values in zip(columns, data, strict=True)
        ]
        typed = [column(col.name, col.type) for col in columns]
        return func.unnest(*arrays).table_valued(*typed).render_derived(name="src")
    typed = [column(col.name, col.type) for col in columns]
    rows = list(zip(*data, strict=True))
    # The CTE is nested in a subquery so that the statement starts with INSERT: pysqlite
    # only opens a transaction before INSERT/UPDATE/DELETE, so a leading WITH would be
    # autocommitted (SQLite cannot name a bare VALUES subquery's columns, hence the CTE).
    src = values_clause(*typed, name="src").data(rows).cte("src", nesting=True)
    return select(src).subquery("new_rows")


def _dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"bulk promocode insert does not support {dialect}")


def _select_rows(
    source: FromClause, constants: Mapping[str, Any], table: Table
) -> tuple[list[str], Select[Any]]:
    """`SELECT src.*, <constants> FROM src WHERE true` and the target column names in order.

    The WHERE clause is for SQLite, which cannot otherwise tell the upsert's ON from a join's.
    """
    names = list(source.c.keys()) + list(constants)
    items: list[ColumnElement[Any]] = [*source.c]
    items += [literal(value, type_=table.c[name].type) for name, value in constants.items()]
    return names, select(*items).select_from(source).where(true())


async def _insert_codes(
    session: AsyncSession, dialect: str, codes: Sequence[str], constants: Mapping[str, Any]
) -> list[tuple[uuid.UUID, str]]:
    """Insert one chunk; returns (id, code) of the rows inserted, i.e. not already taken."""
    ids = [uuid.uuid4() for _ in codes]
    key = [PROMOCODES.c.id, PROMOCODES.c.code]
    source = _rows_source(dialect, key, [ids, list(codes)])
    names, rows = _select_rows(source, constants, PROMOCODES)
    statement = (
        _dialect_insert(dialect, PROMOCODES)
        .from_select(names, rows)
        .on_conflict_do_nothing(index_elements=[PROMOCODES.c.code])
        .returning(PROMOCODES.c.id, PROMOCODES.c.code)
    )
    result = await session.execute(statement)
    return [(row.id, row.code) for row in result]


async def _insert_plans(
    session: AsyncSession, dialect: str, code_ids: Sequence[uuid.UUID], plan_ids: list[uuid.UUID]
) -> None:
    """One `promocode_plans` row per (new code, plan), in as few statements as fit."""
    pairs = [(code_id, plan_id) for code_id in code_ids for plan_id in plan_ids]
    key = [promocode_plans.c.promocode_id, promocode_plans.c.plan_id]
    for chunk in _chunks(pairs, SQLITE_MAX_PARAMETERS // 4):
        source = _rows_source(dialect, key, [list(side) for side in zip(*chunk, strict=True)])
        names, rows = _select_rows(source, {}, promocode_plans)
        await session.execute(_dialect_insert(dialect, promocode_plans).from_select(names, rows))


async def insert_generated(
    session: AsyncSession,
    *,
    template: Mapping[str, Any],
    count: int,
    length: int,
    prefix: str,
    charset: str = SAFE_CHARSET,
    batch_id: uuid.UUID,
    rng: Random | None = None,
) -> list[str]:
    """Insert `count` new codes made from `template`; returns them. Never commits.

    Every row copies the template's COPIED_COLUMNS (missing ones take the column default),
    and gets its own id, `uses=0`, `active=True` and `batch_id`; `template["plan_ids"]`, when
    given, becomes each code's eligible plans. A drawn code that already exists is skipped by
    `ON CONFLICT (code) DO NOTHING` and replaced by a fresh draw until `count` are inserted.
    Raises ValueError for an invalid request or template (before touching the database), or
    when the database holds so many codes of this shape that `count` free ones are not left.
    """
    constants = _constant_values(template, batch_id)
    plan_ids = _plan_ids(template)
    dialect = session.get_bind().dialect.name
    pending = generate(count, length=length, prefix=prefix, charset=charset, rng=rng)
    drawn = set(pending)  # everything drawn so far: inserted, or found to exist already
    inserted: list[str] = []
    while pending:
        for chunk in _chunks(pending, CHUNK_ROWS):
            rows = await _insert_codes(session, dialect, chunk, constants)
            if plan_ids:
                await _insert_plans(session, dialect, [row_id for row_id, _ in rows], plan_ids)
            inserted.extend(code for _, code in rows)
        missing = count - len(inserted)
        if missing:
            pending = generate(
                missing, length=length, prefix=prefix, charset=charset, taken=drawn, rng=rng
            )
            drawn.update(pending)
        else:
            pending = []
    return inserted
