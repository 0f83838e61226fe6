"""The promocodes error codes: what a client is told of a rejection, and the API's enums."""

from __future__ import annotations

import enum

import pytest

from app.models.promocodes import Rejection
from app.services.idempotency import IdempotencyErrorCode
from app.services.promocodes.attempts import PromocodeRejected
from app.services.promocodes.errors import (
    CLIENT_REJECTIONS,
    PromocodeErrorCode,
    PurchaseErrorCode,
    client_code,
    purchase_code,
)
from schema.schema import build_schema
from tests.conftest import test_settings as make_settings


def test_every_rejection_has_a_client_code() -> None:
    assert set(CLIENT_REJECTIONS) == set(Rejection)


def test_a_code_not_assigned_to_the_caller_is_shown_as_not_found() -> None:
    assert client_code(Rejection.NOT_ASSIGNED_TO_USER) is PurchaseErrorCode.NOT_FOUND
    assert "NOT_ASSIGNED_TO_USER" not in PurchaseErrorCode.__members__


@pytest.mark.parametrize(
    "reason", [r for r in Rejection if r is not Rejection.NOT_ASSIGNED_TO_USER]
)
def test_every_other_rejection_is_shown_as_itself(reason: Rejection) -> None:
    assert client_code(reason) is PurchaseErrorCode[reason.name]


def test_a_rejection_keeps_the_truth_and_tells_the_client_code() -> None:
    hidden = PromocodeRejected(Rejection.NOT_ASSIGNED_TO_USER)
    shown = PromocodeRejected(Rejection.NOT_FOUND)
    assert (hidden.reason, hidden.code, hidden.field) == (
        Rejection.NOT_ASSIGNED_TO_USER,
        PurchaseErrorCode.NOT_FOUND,
        "code",
    )
    assert hidden.message == shown.message  # the message tells no more than the code


@pytest.mark.parametrize("code", list(IdempotencyErrorCode))
def test_idempotency_refusals_are_purchase_codes(code: IdempotencyErrorCode) -> None:
    assert purchase_code(code) is PurchaseErrorCode[code.name]


@pytest.mark.parametrize(
    ("api_name", "service_enum"),
    [("PurchaseErrorCode", PurchaseErrorCode), ("PromocodeErrorCode", PromocodeErrorCode)],
)
def test_the_api_error_codes_are_the_service_codes(
    api_name: str, service_enum: type[enum.Enum]
) -> None:
    api_enum = build_schema(make_settings()).as_str().split(f"enum {api_name} {{")[1]
    api_codes = api_enum.split("}")[0].split()
    assert api_codes == [code.name for code in service_enum]
