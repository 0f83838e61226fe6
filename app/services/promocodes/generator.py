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

import json
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from random import Random
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    Select,
    String,
    Table,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
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

# Rows per INSERT. Only `id` and `code` vary per row, and they travel as one array each
# (PostgreSQL) or one JSON parameter (SQLite), so the statement's parameter count does not
# grow with the chunk (SQLite allows 32,766); the chunk bounds the statement's size.
CHUNK_ROWS = 5000

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
    if count == 0:
        return []
    taken = taken or set()
    free = space - _taken_in_space(taken, prefix, length, charset)
    if count > free:
        raise ValueError(f"only {free} of the {space} possible codes are free, {count} requested")
    draw = (rng or _SYSTEM_RANDOM).randrange  # one unbiased draw per code
    chosen: dict[str, None] = {}  # insertion-ordered, so a seeded rng gives a stable result
    while len(chosen) < count:
        batch = (prefix + _encode(draw(space), length, charset) for _ in range(count - len(chosen)))
        chosen.update(dict.fromkeys(code for code in batch if code not in taken))
    return list(chosen)


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


def _stored(dialect: Dialect, col: Column[Any], values: Sequence[Any]) -> list[Any]:
    """`values` as the column's type binds them (a UUID on SQLite: its 32 hex digits)."""
    processor = col.type.bind_processor(dialect)
    return [processor(value) for value in values] if processor else list(values)


def _rows_source(
    dialect: Dialect, columns: Sequence[Column[Any]], data: list[list[Any]]
) -> FromClause:
    """A FROM clause of rows; `data` holds one list of values per column of `columns`.

    PostgreSQL: `unnest` of one array per column. SQLite: `json_each` of one JSON array of
    rows. Either way a chunk costs a bound parameter per column, not per value: a VALUES list
    would cost SQLAlchemy about 50 µs per row to compile, and on SQLite would need a CTE to
    name its columns; a statement starting with WITH is autocommitted by pysqlite, which only
    opens a transaction before INSERT/UPDATE/DELETE.
    """
    if dialect.name == "postgresql":
        arrays = [literal(vals, ARRAY(col.type)) for col, vals in zip(columns, data, strict=True)]
        typed = [column(col.name, col.type) for col in columns]
        return func.unnest(*arrays).table_valued(*typed).render_derived(name="src")
    stored = [_stored(dialect, col, vals) for col, vals in zip(columns, data, strict=True)]
    payload = json.dumps(list(zip(*stored, strict=True)))
    each = func.json_each(literal(payload, String())).table_valued("value").alias("src")
    fields = [
        func.json_extract(each.c.value, f"$[{index}]").label(col.name)
        for index, col in enumerate(columns)
    ]
    return select(*fields).select_from(each).subquery("new_rows")


def _dialect_insert(dialect: Dialect, table: Table) -> postgresql.Insert | sqlite.Insert:
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"bulk promocode insert does not support {dialect.name}")


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
    session: AsyncSession,
    dialect: Dialect,
    ids: list[uuid.UUID],
    codes: list[str],
    constants: Mapping[str, Any],
) -> list[str]:
    """Insert one chunk; returns the codes inserted, i.e. those not taken already."""
    key = [PROMOCODES.c.id, PROMOCODES.c.code]
    names, rows = _select_rows(_rows_source(dialect, key, [ids, codes]), constants, PROMOCODES)
    statement = (
        _dialect_insert(dialect, PROMOCODES)
        .from_select(names, rows)
        .on_conflict_do_nothing(index_elements=[PROMOCODES.c.code])
        .returning(PROMOCODES.c.code)
    )
    return list((await session.scalars(statement)).all())


async def _insert_plans(
    session: AsyncSession,
    dialect: Dialect,
    code_ids: Sequence[uuid.UUID],
    plan_ids: list[uuid.UUID],
) -> None:
    """One `promocode_plans` row per (new code, plan), in as few statements as fit."""
    pairs = [(code_id, plan_id) for code_id in code_ids for plan_id in plan_ids]
    key = [promocode_plans.c.promocode_id, promocode_plans.c.plan_id]
    for chunk in _chunks(pairs, CHUNK_ROWS):
        source = _rows_source(dialect, key, [list(side) for side in zip(*chunk, strict=True)])
        names, rows = _select_rows(source, {}, promocode_plans)
        await session.execute(_dialect_insert(dialect, promocode_plans).from_select(names, rows))


async def _insert_chunk(
    session: AsyncSession,
    dialect: Dialect,
    codes: Sequence[str],
    constants: Mapping[str, Any],
    plan_ids: list[uuid.UUID],
) -> list[str]:
    """Insert one chunk of codes and their eligible plans; returns the codes inserted."""
    ids = [uuid.uuid4() for _ in codes]
    inserted = await _insert_codes(session, dialect, ids, list(codes), constants)
    if plan_ids and inserted:
        id_of = dict(zip(codes, ids, strict=True))
        await _insert_plans(session, dialect, [id_of[code] for code in inserted], plan_ids)
    return inserted


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
    dialect = session.get_bind().dialect

    def draw(number: int, taken: set[str] | None = None) -> list[str]:
        return generate(number, length=length, prefix=prefix, charset=charset, taken=taken, rng=rng)

    pending = draw(count)
    drawn = set(pending)  # everything drawn so far: inserted, or found to exist already
    inserted: list[str] = []
    while pending:
        for chunk in _chunks(pending, CHUNK_ROWS):
            inserted += await _insert_chunk(session, dialect, chunk, constants, plan_ids)
        # The codes that were skipped exist already (they are in `drawn`): draw replacements.
        pending = draw(count - len(inserted), taken=drawn)
        drawn.update(pending)
    return inserted
