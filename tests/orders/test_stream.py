"""The order stream's contracts: whom each recorded order goes to, and the API's error codes."""

from __future__ import annotations

from app import outbox
from app.services.orders.codes import OrderErrorCode
from app.services.orders.recording import CONSUMERS
from jobs.registry import load_actor_modules
from schema.schema import build_schema
from tests.conftest import test_settings as make_settings


def test_every_consumer_is_a_declared_actor() -> None:
    load_actor_modules()
    assert CONSUMERS
    assert [name for name in CONSUMERS if name not in outbox.KNOWN_ACTORS] == []


def test_the_api_error_codes_are_the_service_codes() -> None:
    """orderRecord reports OrderErrorCode itself (order facts raise it too): no mapping."""
    api_enum = build_schema(make_settings()).as_str().split("enum OrderRecordErrorCode {")[1]
    assert api_enum.split("}")[0].split() == [code.name for code in OrderErrorCode]
