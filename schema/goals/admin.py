"""Personal goals, admin surface: goal templates (their admin view, inputs and payloads) and the
admin error codes. Resolvers are in `resolvers/goals_admin.py`.

Texts, conditions and bonus travel as JSON scalars: texts as maps locale -> text, conditions
and bonus in the shapes `app/services/goals/conditions.py` and `bonuses.py` document (the
stored, canonical form comes back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.goals import GoalTemplate, TemplateStatus
from app.services.goals.bonuses import BonusType
from app.services.goals.codes import GoalErrorCode
from schema.context import Context
from schema.goals.loaders import GoalTemplateByIdLoader
from schema.permissions import visible_rows

strawberry.enum(
    TemplateStatus,
    name="GoalTemplateStatus",
    description=(
        "ACTIVE: may be assigned. ARCHIVED: kept for the goals already assigned (they run "
        "their course) but can't be assigned again."
    ),
)
strawberry.enum(
    BonusType,
    name="GoalBonusType",
    description=(
        "What a goal gives. PROMOCODE: a personal single-use promocode (percent or amount off). "
        "WALLET: an amount credited to the user's wallet. CASHBACK: a percent of wallet "
        "payments back for some days."
    ),
)


strawberry.enum(
    GoalErrorCode,
    name="GoalAdminErrorCode",
    description=(
        "Why an admin goal mutation was refused (`field` names the input at fault, e.g. "
        "`conditions.timeWindow.start`, `bonus.type`, `title.ru`). INVALID_CONDITIONS: "
        "conditions not an object, or an unknown key. INVALID_TARGET: target not 1-1000. "
        "INVALID_PERIOD: periodDays not 1-366, both or neither of periodDays and "
        "startsAt/endsAt, endsAt not after startsAt or in the past, a time without offset. "
        "INVALID_TIME_WINDOW: not HH:MM 00:00-23:59, or start equal to end. "
        "UNKNOWN_RIDE_CLASS, UNKNOWN_PAYMENT_METHOD, UNKNOWN_ORDER_KIND, UNKNOWN_BONUS_TYPE: a "
        "value not in the list. INVALID_MIN_PRICE, INVALID_CURRENCY, INVALID_BONUS: a bad "
        "amount, currency or bonus field. INVALID_TIMEZONE, INVALID_ORDER: order facts. "
        "INVALID_ID: a template id is 1-64 of a-z, 0-9 and '-'. INVALID_TEXT: a bad locale, "
        "no text for the default locale, a text too long, empty or not printable, too many "
        "locales or lines. INVALID_REASON: over 500 characters or not printable. "
        "TEMPLATE_EXISTS: the id is taken (archived templates keep theirs). "
        "TEMPLATE_NOT_FOUND: no such template."
    ),
)


@strawberry.type(description="A refused admin goal mutation: what was wrong, and where.")
class GoalAdminError:
    code: GoalErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(
        description=(
            "The input field at fault as a dotted camelCase path (`conditions.target`, "
            "`details.en.2`); null for the request as a whole."
        )
    )
    message: str = strawberry.field(description="A human-readable explanation, for operators.")


TEXT_DESCRIPTION = 'A map locale -> text, e.g. {"en": "Ride 5 times", "ru": "…"}'


@strawberry.type(
    name="GoalTemplate",
    description=(
        "A personal goal template as admins see it: texts in every locale, the conditions an "
        "order must meet, and the bonus (admin). Its global id wraps the slug."
    ),
)
class GoalTemplateNode(relay.Node):
    id: relay.NodeID[str]
    slug: str = strawberry.field(
        description="The template's stable id (e.g. `comfort-5`), as CSV uploads name it."
    )
    status: TemplateStatus = strawberry.field(description="Whether it may be assigned.")
    default_locale: str = strawberry.field(
        description="The locale every text has; shown when the user's locale has none."
    )
    title: JSON = strawberry.field(description=f"{TEXT_DESCRIPTION}.")
    description: JSON = strawberry.field(description=f"{TEXT_DESCRIPTION}; may be empty.")
    details: JSON = strawberry.field(
        description="A map locale -> list of detail lines; may be empty."
    )
    button_text: JSON = strawberry.field(
        description=f"The achievement button's text: {TEXT_DESCRIPTION}."
    )
    conditions: JSON = strawberry.field(
        description="What an order must meet to count, in canonical form (see docs/goals.md)."
    )
    bonus: JSON = strawberry.field(
        description="What the goal gives, in canonical form (see docs/goals.md)."
    )
    target: int = strawberry.field(description="How many orders complete the goal.")
    bonus_type: BonusType = strawberry.field(description="The kind of bonus.")
    created_by: str = strawberry.field(description="Who created it (`user:<id>`, …).")
    updated_by: str = strawberry.field(description="Who changed it last.")
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @classmethod
    def from_model(cls, template: GoalTemplate) -> GoalTemplateNode:
        return cls(
            id=template.id,
            slug=template.id,
            status=template.status,
            default_locale=template.default_locale,
            title=JSON(template.title),
            description=JSON(template.description),
            details=JSON(template.details),
            button_text=JSON(template.button_text),
            conditions=JSON(template.conditions),
            bonus=JSON(template.bonus),
            target=int(template.conditions["target"]),
            bonus_type=BonusType(template.bonus["type"]),
            created_by=template.created_by,
            updated_by=template.updated_by,
            created_at=template.created_at,
            updated_at=template.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[GoalTemplateNode | None]:
        """Admins only, like every template read."""
        found = await info.context.loaders[GoalTemplateByIdLoader].load_many(list(node_ids))
        return [cls.from_model(row) if row else None for row in await visible_rows(info, found)]


# ---- inputs and payloads --------------------------------------------------------------------

REASON_DESCRIPTION = "Why, for the audit log: at most 500 printable characters."
TEMPLATE_ID_DESCRIPTION = "The template's slug (a GoalTemplate global id is accepted too)."
CONDITIONS_DESCRIPTION = (
    'What an order must meet to count, e.g. {"target": 5, "periodDays": 7, "rideClasses": '
    '["comfort"], "timeWindow": {"start": "22:00", "end": "06:00"}} (see docs/goals.md).'
)
BONUS_DESCRIPTION = (
    'What the goal gives, e.g. {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, '
    '"validityDays": 30}, {"type": "WALLET", "amountMinor": 30000, "currency": "RUB"} or '
    '{"type": "CASHBACK", "percent": 10, "days": 14}.'
)


@strawberry.input(description="A new goal template.")
class GoalTemplateCreateInput:
    id: str = strawberry.field(
        description="A stable slug: 1-64 of a-z, 0-9 and '-', starting with a-z or 0-9."
    )
    default_locale: str = strawberry.field(
        default="en", description="The locale every text must have, e.g. en or ru."
    )
    title: JSON = strawberry.field(description=f"{TEXT_DESCRIPTION}; at most 120 characters.")
    description: JSON | None = strawberry.field(
        default=None, description=f"{TEXT_DESCRIPTION}; at most 1000 characters; optional."
    )
    details: JSON | None = strawberry.field(
        default=None,
        description="A map locale -> 1-10 lines of at most 200 characters; optional.",
    )
    button_text: JSON | None = strawberry.field(
        default=None,
        description=(
            f'{TEXT_DESCRIPTION}; at most 40 characters; omitted: {{"<defaultLocale>": "OK"}}.'
        ),
    )
    conditions: JSON = strawberry.field(description=CONDITIONS_DESCRIPTION)
    bonus: JSON = strawberry.field(description=BONUS_DESCRIPTION)
    reason: str | None = strawberry.field(default=None, description=REASON_DESCRIPTION)


@strawberry.input(
    description=(
        "Changes to a goal template; an omitted (or null) field stays as it is, the id never "
        "changes. Goals already assigned keep the conditions and bonus they were given; text "
        "changes show on them too."
    )
)
class GoalTemplateUpdateInput:
    id: str = strawberry.field(description=TEMPLATE_ID_DESCRIPTION)
    default_locale: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new default locale; every non-empty text must have it.",
    )
    title: JSON | None = strawberry.field(default=strawberry.UNSET, description="New titles.")
    description: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="New descriptions; {} removes them."
    )
    details: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="New detail lines; {} removes them."
    )
    button_text: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="New button texts."
    )
    conditions: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"New conditions (for later assignments). {CONDITIONS_DESCRIPTION}",
    )
    bonus: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"A new bonus (for later assignments). {BONUS_DESCRIPTION}",
    )
    reason: str | None = strawberry.field(default=None, description=REASON_DESCRIPTION)


@strawberry.input(description="A goal template to archive or unarchive.")
class GoalTemplateArchiveInput:
    id: str = strawberry.field(description=TEMPLATE_ID_DESCRIPTION)
    reason: str | None = strawberry.field(default=None, description=REASON_DESCRIPTION)


@strawberry.type(description="The result of `goalTemplateCreate`, `goalTemplateUpdate` and co.")
class GoalTemplatePayload:
    template: GoalTemplateNode | None = strawberry.field(
        default=None, description="The template as it is now; null when refused."
    )
    errors: list[GoalAdminError] = strawberry.field(description="Why it was refused; or empty.")
