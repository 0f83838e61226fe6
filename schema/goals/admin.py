"""Personal goals, admin surface: the goal template as admins see it. Its inputs and payload
are in `inputs.py`, the admin error codes in `errors.py`; resolvers in `resolvers/goals/admin.py`.

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
from schema.context import Context
from schema.goals.loaders import GoalTemplateByIdLoader
from schema.permissions import visible_nodes

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
        return await visible_nodes(info, GoalTemplateByIdLoader, node_ids, cls.from_model)
