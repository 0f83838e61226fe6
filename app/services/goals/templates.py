"""Goal templates, admin side: create, update, archive, find and list them.

A template is what a goal asks for (conditions) and gives (bonus), with localizable texts (see
`texts`). Its id is a stable slug (`comfort-5`) that CSV uploads and the assignment service
name; it never changes.

Every check runs before anything is written, so a refused request changes nothing; every
action that changes a template writes an `AuditLog` row (actor, action, target, reason).
Services never commit. Conditions and bonus are stored in their canonical JSON form
(`conditions_to_json`, `bonus_to_json`), so they can be re-read with `parse_conditions` /
`parse_bonus` and compared as values.

Decisions:
- `buttonText` defaults to `{"<defaultLocale>": "OK"}` when absent at creation; `description`
  and `details` may be empty. Every non-empty text map holds the default locale.
- Updating never touches user goals already assigned: they snapshot the conditions and bonus
  at assignment. Texts are not snapshotted, so a text fix shows on those goals too.
- Archived templates keep their goals but can't be assigned again (the assignment service
  refuses them); they may still be edited (texts show on existing goals), and
  `unarchive_template` undoes it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.goals import GoalTemplate, TemplateStatus
from app.models.identity import AuditLog
from app.services.errors import DomainError
from app.services.goals.bonuses import bonus_to_json, parse_bonus
from app.services.goals.codes import GoalErrorCode
from app.services.goals.conditions import conditions_to_json, parse_conditions
from app.services.goals.texts import check_locale, validate_lines, validate_text

__all__ = [
    "DEFAULT_BUTTON_TEXT",
    "UNSET",
    "TemplateInput",
    "TemplatePage",
    "TemplateUpdate",
    "Unset",
    "archive_template",
    "create_template",
    "get_template",
    "list_templates",
    "templates_by_ids",
    "unarchive_template",
    "update_template",
]

Code = GoalErrorCode

MAX_ID_LENGTH = 64
MAX_TITLE_LENGTH = 120
MAX_DESCRIPTION_LENGTH = 1000
MAX_DETAIL_LINE_LENGTH = 200
MAX_BUTTON_TEXT_LENGTH = 40
MAX_REASON_LENGTH = 500
DEFAULT_BUTTON_TEXT = "OK"

_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class Unset(enum.Enum):
    """Marks a `TemplateUpdate` field left as it is."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class TemplateInput:
    """A new template as the admin gave it: texts, conditions and bonus are raw JSON."""

    id: str
    title: object
    conditions: object
    bonus: object
    default_locale: str = "en"
    description: object = None  # None: no description
    details: object = None  # None: no detail lines
    button_text: object = None  # None: {"<default_locale>": "OK"}


@dataclass(frozen=True, slots=True)
class TemplateUpdate:
    """Changes to a template; UNSET fields stay as they are. The id can't change.

    Give `{}` to empty `description` or `details`; `title` and `buttonText` can't be empty.
    """

    default_locale: str | Unset = UNSET
    title: object = UNSET
    description: object = UNSET
    details: object = UNSET
    button_text: object = UNSET
    conditions: object = UNSET
    bonus: object = UNSET


@dataclass(frozen=True, slots=True)
class TemplatePage:
    templates: list[GoalTemplate]
    has_next: bool


# --- pure checks -------------------------------------------------------------------------


def check_id(value: object, field: str = "id") -> str:
    """A template id: 1-64 of a-z, 0-9 and '-', not starting with '-' (as given, no folding)."""
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise DomainError(
            Code.INVALID_ID,
            f"A template id is 1-{MAX_ID_LENGTH} of a-z, 0-9 and '-', starting with a-z or 0-9.",
            field,
        )
    return value


def check_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_LENGTH or not reason.replace("\n", " ").isprintable():
        raise DomainError(
            Code.INVALID_REASON,
            f"The reason must be at most {MAX_REASON_LENGTH} printable characters.",
            "reason",
        )
    return reason


def _texts(values: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """The four text columns, validated against the default `locale`."""
    return {
        "title": validate_text(
            values["title"], "title", default_locale=locale, max_length=MAX_TITLE_LENGTH
        ),
        "description": validate_text(
            values["description"],
            "description",
            default_locale=locale,
            max_length=MAX_DESCRIPTION_LENGTH,
            required=False,
            multiline=True,
        ),
        "details": validate_lines(
            values["details"],
            "details",
            default_locale=locale,
            max_length=MAX_DETAIL_LINE_LENGTH,
        ),
        "button_text": validate_text(
            values["button_text"],
            "buttonText",
            default_locale=locale,
            max_length=MAX_BUTTON_TEXT_LENGTH,
        ),
    }


def _conditions(value: object, now: datetime | None) -> dict[str, Any]:
    return conditions_to_json(parse_conditions(value, now=now))  # type: ignore[arg-type]


def _bonus(value: object) -> dict[str, Any]:
    return bonus_to_json(parse_bonus(value))  # type: ignore[arg-type]


def template_columns(data: TemplateInput, *, now: datetime) -> dict[str, Any]:
    """The validated columns of a new template, or the first DomainError; no database."""
    template_id = check_id(data.id)
    locale = check_locale(data.default_locale, "defaultLocale")
    button_text = data.button_text
    if button_text is None:
        button_text = {locale: DEFAULT_BUTTON_TEXT}
    texts = _texts(
        {
            "title": data.title,
            "description": data.description,
            "details": data.details,
            "button_text": button_text,
        },
        locale,
    )
    return {
        "id": template_id,
        "default_locale": locale,
        **texts,
        "conditions": _conditions(data.conditions, now),
        "bonus": _bonus(data.bonus),
    }


# --- reads -------------------------------------------------------------------------------


async def get_template(
    session: AsyncSession, template_id: str, *, lock: bool = False, field: str = "id"
) -> GoalTemplate:
    """The template, or TEMPLATE_NOT_FOUND naming `field`."""
    template = await session.get(GoalTemplate, template_id, with_for_update=lock)
    if template is None:
        raise DomainError(Code.TEMPLATE_NOT_FOUND, f"No goal template {template_id!r}.", field)
    return template


async def list_templates(
    session: AsyncSession,
    status: TemplateStatus | None = None,
    first: int = 100,
    after: str | None = None,
) -> TemplatePage:
    """Up to `first` templates ordered by id, after the id `after` (keyset pagination)."""
    statement = select(GoalTemplate).order_by(GoalTemplate.id).limit(first + 1)
    if status is not None:
        statement = statement.where(GoalTemplate.status == status)
    if after is not None:
        statement = statement.where(GoalTemplate.id > after)
    rows = list(await session.scalars(statement))
    return TemplatePage(templates=rows[:first], has_next=len(rows) > first)


async def templates_by_ids(session: AsyncSession, ids: Sequence[str]) -> list[GoalTemplate | None]:
    """The templates for `ids`, in order; None where an id names none."""
    rows = await session.scalars(select(GoalTemplate).where(GoalTemplate.id.in_(set(ids))))
    by_id = {row.id: row for row in rows}
    return [by_id.get(template_id) for template_id in ids]


# --- writes ------------------------------------------------------------------------------


def _audit(session: AsyncSession, actor: str, action: str, template_id: str, reason: str) -> None:
    session.add(
        AuditLog(
            actor=actor,
            action=f"goal_template.{action}",
            target=f"goal_template:{template_id}",
            reason=reason,
        )
    )


async def create_template(
    session: AsyncSession, data: TemplateInput, *, actor: str, reason: str | None = None
) -> GoalTemplate:
    """A new ACTIVE template; TEMPLATE_EXISTS if the id is taken (even by an archived one)."""
    reason = check_reason(reason)
    columns = template_columns(data, now=utcnow())
    exists = DomainError(Code.TEMPLATE_EXISTS, f"The id {data.id!r} is taken.", "id")
    if await session.get(GoalTemplate, columns["id"]) is not None:
        raise exists
    template = GoalTemplate(
        **columns, status=TemplateStatus.ACTIVE, created_by=actor, updated_by=actor
    )
    try:
        async with session.begin_nested():
            session.add(template)
            await session.flush()
    except IntegrityError as exc:  # a concurrent create won the primary key
        raise exists from exc
    _audit(session, actor, "create", template.id, reason)
    return template


def _set(value: object) -> bool:
    return value is not UNSET


def _changed_columns(
    template: GoalTemplate, changes: TemplateUpdate, now: datetime
) -> dict[str, Any]:
    """The new values of the columns `changes` touches, validated as a whole."""
    locale = template.default_locale
    if _set(changes.default_locale):
        locale = check_locale(changes.default_locale, "defaultLocale")
    merged = {
        name: getattr(changes, name) if _set(getattr(changes, name)) else getattr(template, name)
        for name in ("title", "description", "details", "button_text")
    }
    values: dict[str, Any] = {"default_locale": locale, **_texts(merged, locale)}
    if _set(changes.conditions):
        values["conditions"] = _conditions(changes.conditions, None)
        if values["conditions"] != template.conditions:  # a new period must not be over
            values["conditions"] = _conditions(changes.conditions, now)
    if _set(changes.bonus):
        values["bonus"] = _bonus(changes.bonus)
    return {name: v for name, v in values.items() if getattr(template, name) != v}


async def update_template(
    session: AsyncSession,
    template_id: str,
    changes: TemplateUpdate,
    *,
    actor: str,
    reason: str | None = None,
) -> GoalTemplate:
    """Apply `changes` (texts, default locale, conditions, bonus); audited when anything changes.

    Editing never touches user goals already assigned: a user goal snapshots the template's
    conditions and bonus when it is assigned, so new conditions or a new bonus apply to later
    assignments only. Texts are read from the template, so text fixes show everywhere. Every
    non-empty text map must hold the (possibly new) default locale. Archived templates may be
    edited too.
    """
    reason = check_reason(reason)
    template = await get_template(session, template_id, lock=True)
    changed = _changed_columns(template, changes, utcnow())
    if not changed:
        return template
    for name, value in changed.items():
        setattr(template, name, value)
    template.updated_by = actor
    _audit(session, actor, "update", template.id, reason)
    await session.flush()
    return template


async def _set_status(
    session: AsyncSession,
    template_id: str,
    status: TemplateStatus,
    *,
    actor: str,
    reason: str | None,
) -> GoalTemplate:
    reason = check_reason(reason)
    template = await get_template(session, template_id, lock=True)
    if template.status is not status:
        template.status = status
        template.updated_by = actor
        action = "archive" if status is TemplateStatus.ARCHIVED else "unarchive"
        _audit(session, actor, action, template.id, reason)
        await session.flush()
    return template


async def archive_template(
    session: AsyncSession, template_id: str, *, actor: str, reason: str | None = None
) -> GoalTemplate:
    """Stop new assignments of the template; idempotent (audited only when it changes).

    User goals already assigned, waiting or active, run their course.
    """
    return await _set_status(
        session, template_id, TemplateStatus.ARCHIVED, actor=actor, reason=reason
    )


async def unarchive_template(
    session: AsyncSession, template_id: str, *, actor: str, reason: str | None = None
) -> GoalTemplate:
    """Make an archived template assignable again; idempotent (audited only when it changes)."""
    return await _set_status(
        session, template_id, TemplateStatus.ACTIVE, actor=actor, reason=reason
    )
