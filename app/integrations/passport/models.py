"""What the passport API returns, as frozen dataclasses, and their strict parsing.

Parsing checks every field the contract names (type, and the role's two values): an answer
that does not fit is BAD_RESPONSE rather than a half-built object. Unknown extra fields are
ignored, so the service may add some.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from app.integrations.passport.errors import PassportError, PassportErrorCode

MemberRole = Literal["admin", "member"]
ROLES: frozenset[str] = frozenset({"admin", "member"})


@dataclass(frozen=True)
class PassportAccount:
    uid: str
    phone: str


@dataclass(frozen=True)
class PassportMember:
    uid: str
    phone: str
    role: MemberRole


@dataclass(frozen=True)
class PassportFamily:
    family_id: str
    admin_uid: str
    members: tuple[PassportMember, ...]  # the admin included, in the service's order

    def member(self, uid: str) -> PassportMember | None:
        return next((m for m in self.members if m.uid == uid), None)


def bad_response(message: str, status: int | None = None) -> PassportError:
    return PassportError(PassportErrorCode.BAD_RESPONSE, message, status=status)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise bad_response(f"field {key!r} is not a non-empty string")
    return value


def _object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad_response("expected a JSON object")
    return cast(dict[str, Any], data)


def parse_account(data: object) -> PassportAccount:
    body = _object(data)
    return PassportAccount(uid=_text(body, "uid"), phone=_text(body, "phone"))


def _parse_member(data: object) -> PassportMember:
    body = _object(data)
    role = _text(body, "role")
    if role not in ROLES:
        raise bad_response(f"unknown member role {role!r}")
    return PassportMember(
        uid=_text(body, "uid"), phone=_text(body, "phone"), role=cast(MemberRole, role)
    )


def parse_family(data: object) -> PassportFamily:
    body = _object(data)
    members = body.get("members")
    if not isinstance(members, list):
        raise bad_response("field 'members' is not a list")
    return PassportFamily(
        family_id=_text(body, "family_id"),
        admin_uid=_text(body, "admin_uid"),
        members=tuple(_parse_member(member) for member in members),
    )
