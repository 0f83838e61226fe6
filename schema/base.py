"""Shared API building blocks: Money, global ids, connections, idempotency keys."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry import relay

from app.services.pagination import OffsetPage

NodeT = TypeVar("NodeT", bound=relay.Node)

IDEMPOTENCY_KEY_DESCRIPTION = (
    "Makes a creating mutation safe to retry: the same caller sending the same key (1-100 "
    "characters) gets the first result back instead of a second effect."
)


PageSize = Annotated[
    int | None, strawberry.argument(description="Page size, at most 100 (the default).")
]
After = Annotated[
    str | None, strawberry.argument(description="The `endCursor` of the previous page.")
]


@strawberry.type(description="An amount of money in integer minor units (kopecks, cents).")
class Money:
    amount_minor: int
    currency: str


class BadUserInput(GraphQLError):
    """A query argument that can't be used; mutations report these in their payload instead."""

    def __init__(self, message: str, argument: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT", "argument": argument})


def decode_global_id(value: str | strawberry.ID, expected_type: str) -> uuid.UUID:
    """The UUID inside a global id of `expected_type`; ValueError for anything else."""
    try:
        gid = relay.GlobalID.from_id(value)
    except relay.GlobalIDValueError as exc:
        raise ValueError(f"not a global id: {value!r}") from exc
    if gid.type_name != expected_type:
        raise ValueError(f"not a {expected_type} id")
    return uuid.UUID(gid.node_id)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset of the first row after `cursor`."""
    if cursor is None:
        return 0
    try:
        kind, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(raw)
        if kind != "o" or offset < 0:
            raise ValueError(cursor)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUserInput("Invalid cursor.", "after") from exc
    return offset + 1


def page_size(first: int | None, max_page_size: int) -> int:
    """The page size `first` asks for (the maximum by default), or BAD_USER_INPUT."""
    size = max_page_size if first is None else first
    if not 0 <= size <= max_page_size:
        raise BadUserInput(f"`first` must be between 0 and {max_page_size}.", "first")
    return size


def offset_page(first: int | None, after: str | None, max_page_size: int) -> OffsetPage:
    """The page `first` / `after` ask for, or BAD_USER_INPUT (before any SQL runs)."""
    return OffsetPage(offset=decode_cursor(after), limit=page_size(first, max_page_size))


def offset_connection(
    connection_cls: type[relay.Connection[NodeT]],
    nodes: Sequence[NodeT],
    page: OffsetPage,
    has_next: bool,
) -> relay.Connection[NodeT]:
    """The connection of one offset page (see `offset_page`)."""
    return build_connection(connection_cls, nodes, page.offset, has_next, page.offset > 0)


def build_connection(
    connection_cls: type[relay.Connection[NodeT]],
    nodes: Sequence[NodeT],
    start: int,
    has_next: bool,
    has_previous: bool,
) -> relay.Connection[NodeT]:
    """An offset-paged connection."""
    cursors = [encode_cursor(start + index) for index in range(len(nodes))]
    return connection_of(nodes, cursors, has_next, has_previous, connection_cls)


def connection_of(
    nodes: Sequence[NodeT],
    cursors: Sequence[str],
    has_next: bool,
    has_previous: bool,
    connection_cls: type[relay.Connection[NodeT]] = relay.Connection,
) -> relay.Connection[NodeT]:
    """A connection from nodes and their cursors, whatever kind of cursor (offset, keyset)."""
    edges = [
        relay.Edge(node=node, cursor=cursor) for node, cursor in zip(nodes, cursors, strict=True)
    ]
    page_info = relay.PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
    return connection_cls(edges=edges, page_info=page_info)


def keyset_cursor(at: datetime, entry_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"k:{at.isoformat()}|{entry_id}".encode()).decode()


def decode_keyset(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        kind, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        at, _, entry_id = raw.partition("|")
        moment = datetime.fromisoformat(at)
        # Cursors we issue carry an offset; a naive time can't be compared with the column.
        if kind != "k" or moment.tzinfo is None:
            raise ValueError(cursor)
        return moment, uuid.UUID(entry_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUserInput("Invalid cursor.", "after") from exc
