"""Permission classes every resolver uses: IsUser, IsAdmin, IsService.

A caller without valid credentials gets `extensions.code = UNAUTHENTICATED` (with the reason a
presented token was refused); a known caller without the role gets `FORBIDDEN`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from app.auth import Principal
from app.models.identity import Role
from schema.context import Context


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
