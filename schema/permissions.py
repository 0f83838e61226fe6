"""Permission checks for resolvers and types: IsUser, IsAdmin, IsService, require(), can_see().

A caller without valid credentials gets `extensions.code = UNAUTHENTICATED` (with the reason a
presented token was refused); a known caller without the role gets `FORBIDDEN`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from app.auth import Principal
from app.models.identity import Role
from schema.context import Context
from schema.loaders import ContextLoader


class AuthError(GraphQLError):
    def __init__(self, code: str, message: str, reason: str | None = None) -> None:
        extensions: dict[str, Any] = {"code": code}
        if reason:
            extensions["reason"] = reason
        super().__init__(message, extensions=extensions)


def unauthenticated(context: Context) -> AuthError:
    if context.auth_error:
        return AuthError(
            "UNAUTHENTICATED", "The access token was refused.", reason=context.auth_error
        )
    return AuthError("UNAUTHENTICATED", "Sign in to do this.")


async def require(info: Info[Context, Any], *roles: Role) -> Principal:
    """The caller's principal if it holds one of `roles`; raise the right auth error if not."""
    principal = await info.context.principal()
    if not principal.is_authenticated:
        raise unauthenticated(info.context)
    if roles and not any(principal.has_role(role) for role in roles):
        raise AuthError("FORBIDDEN", "You are not allowed to do this.")
    return principal


T = TypeVar("T")


async def visible_rows(
    info: Info[Context, Any],
    rows: Sequence[T | None],
    *,
    owner: Callable[[T], uuid.UUID | None] | None = None,
    roles: tuple[Role, ...] = (Role.ADMIN,),
) -> list[T | None]:
    """The rule of `node(id:)`: the rows the caller may see, None for the others (never an
    auth error, so a forbidden id looks like a missing one). A caller holding one of `roles`
    sees every row; with `owner`, a user also sees the rows they own."""
    principal = await info.context.principal()
    if any(principal.has_role(role) for role in roles):
        return list(rows)
    if owner is None or principal.user_id is None:
        return [None] * len(rows)
    return [row if row is not None and owner(row) == principal.user_id else None for row in rows]


N = TypeVar("N")


async def visible_nodes(
    info: Info[Context, Any],
    loader: type[ContextLoader[str, T | None]],
    node_ids: Iterable[str],
    build: Callable[[T], N],
    *,
    owner: Callable[[T], uuid.UUID | None] | None = None,
    roles: tuple[Role, ...] = (Role.ADMIN,),
) -> list[N | None]:
    """`resolve_nodes` of a Node type: load the rows, keep those `visible_rows` allows, build."""
    found = await info.context.loaders[loader].load_many(list(node_ids))
    visible = await visible_rows(info, found, owner=owner, roles=roles)
    return [build(row) if row is not None else None for row in visible]


class _RolePermission(BasePermission):
    roles: ClassVar[tuple[Role, ...]] = ()
    message = "You are not allowed to do this."

    async def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        await require(info, *self.roles)
        return True


class IsAuthenticated(_RolePermission):
    roles = ()


class IsUser(_RolePermission):
    """A signed-in person (services act on users' behalf through their own mutations)."""

    roles = (Role.USER,)


class IsAdmin(_RolePermission):
    roles = (Role.ADMIN,)


class IsService(_RolePermission):
    roles = (Role.SERVICE,)
