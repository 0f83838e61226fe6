"""Every JSON input of the schema refuses a value nested too deep with its domain's typed
error, naming the field, and writes nothing (both backends).

The test walks the schema: a new input field of the JSON scalar fails here until it has a
case below (and so a check in its service, `app.services.validation.check_json`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import GraphQLInputObjectType, get_named_type

from app.models.identity import Role
from app.runtime import Runtime
from app.services.goals.codes import GoalErrorCode
from app.services.orders.codes import OrderErrorCode
from schema.schema import build_schema
from tests.conftest import test_settings as make_settings
from tests.factories.goals import create_template
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.notifier import create_client as create_corp_client
from tests.factories.promotions import create_promotion
from tests.goals.test_templates_admin import CREATE, UPDATE, template_input
from tests.helpers import gql, row_counts
from tests.notifier.test_admin import RULE_SAVE
from tests.notifier.test_publish import PUBLISH as CORP_PUBLISH
from tests.orders.test_order_record import ORDER_RECORD, order_input
from tests.promotions.test_admin import CREATE as PROMOTION_CREATE
from tests.promotions.test_admin import UPDATE as PROMOTION_UPDATE
from tests.promotions.test_admin import gid as promotion_gid
from tests.promotions.test_admin import promotion_input


@dataclass(frozen=True)
class Call:
    """A mutation to send: its document, its root field, its input and the caller's token."""

    document: str
    root: str
    data: dict[str, Any]
    token: str


Prepare = Callable[[Runtime, str, Any], Awaitable[Call]]


def nested(depth: int, *, lists: bool = False) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if lists else {"a": value}
    return value


async def _order(runtime: Runtime, name: str, value: Any) -> Call:
    user = await create_user(runtime)
    data = order_input(user.id, **{name: value})["input"]
    return Call(ORDER_RECORD, "orderRecord", data, await service_token(runtime))


async def _admin(runtime: Runtime) -> str:
    return await access_token(runtime, await create_user(runtime, roles=(Role.USER, Role.ADMIN)))


async def _template_create(runtime: Runtime, name: str, value: Any) -> Call:
    data = template_input(**{name: value})
    return Call(CREATE, "goalTemplateCreate", data, await _admin(runtime))


async def _template_update(runtime: Runtime, name: str, value: Any) -> Call:
    template = await create_template(runtime)
    data = {"id": template.id, name: value}
    return Call(UPDATE, "goalTemplateUpdate", data, await _admin(runtime))


async def _promotion_create(runtime: Runtime, name: str, value: Any) -> Call:
    data = promotion_input(**{name: value})
    return Call(PROMOTION_CREATE, "promotionCreate", data, await _admin(runtime))


async def _promotion_update(runtime: Runtime, name: str, value: Any) -> Call:
    promotion = await create_promotion(runtime)
    data = {"id": promotion_gid(promotion.id), name: value}
    return Call(PROMOTION_UPDATE, "promotionUpdate", data, await _admin(runtime))


async def _corp_event(runtime: Runtime, name: str, value: Any) -> Call:
    corp = await create_corp_client(runtime)
    data = {
        "type": "BALANCE_CHANGED",
        "clientId": corp.external_id,
        name: value,
        "idempotencyKey": "nested",
    }
    return Call(CORP_PUBLISH, "corpEventPublish", data, await service_token(runtime))


async def _notifier_rule(runtime: Runtime, name: str, value: Any) -> Call:
    data = {"key": "limit-is-over", name: value, "reason": "nesting"}
    return Call(RULE_SAVE, "notifierRuleSave", data, await _admin(runtime))


GOAL_CODES = {code.value for code in GoalErrorCode}
TEMPLATE_FIELDS = ("title", "description", "details", "buttonText", "conditions", "bonus")
CASES: dict[tuple[str, str], tuple[Prepare, set[str]]] = {
    ("OrderRecordInput", "data"): (_order, {OrderErrorCode.INVALID_DATA.value}),
    **{
        ("GoalTemplateCreateInput", name): (_template_create, GOAL_CODES)
        for name in TEMPLATE_FIELDS
    },
    **{
        ("GoalTemplateUpdateInput", name): (_template_update, GOAL_CODES)
        for name in TEMPLATE_FIELDS
    },
    ("PromotionCreateInput", "conditions"): (_promotion_create, {"INVALID_CONDITIONS"}),
    ("PromotionUpdateInput", "conditions"): (_promotion_update, {"INVALID_CONDITIONS"}),
    ("CorpEventPublishInput", "payload"): (_corp_event, {"INVALID_FIELD"}),
    ("NotifierRuleSaveInput", "definition"): (_notifier_rule, {"INVALID_RULE"}),
}


def json_inputs() -> set[tuple[str, str]]:
    schema = build_schema(make_settings())._schema
    return {
        (type_name, field_name)
        for type_name, graphql_type in schema.type_map.items()
        if isinstance(graphql_type, GraphQLInputObjectType)
        for field_name, field in graphql_type.fields.items()
        if get_named_type(field.type).name == "JSON"
    }


def test_every_json_input_has_a_case() -> None:
    """A JSON input added without a nesting check (and a case here) fails."""
    assert json_inputs() == set(CASES)


@pytest.mark.parametrize("lists", [False, True], ids=["objects", "lists"])
@pytest.mark.parametrize("where", sorted(CASES), ids=[".".join(key) for key in sorted(CASES)])
async def test_a_json_input_nested_300_levels_is_refused_naming_the_field(
    where: tuple[str, str], lists: bool, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    prepare, codes = CASES[where]
    name = where[1]
    call = await prepare(runtime, name, nested(300, lists=lists))
    before = await row_counts(runtime)
    body = await gql(client, call.document, {"input": call.data}, token=call.token)
    assert "errors" not in body, body
    errors = [(error["code"], error["field"]) for error in body["data"][call.root]["errors"]]
    assert len(errors) == 1, errors
    code, field = errors[0]
    assert code in codes
    assert field == name or field.startswith(f"{name}."), field
    assert await row_counts(runtime) == before
