"""The notifier's error type. The service enum (`app/services/notifier/codes.py`) is the
GraphQL enum, registered here once."""

from __future__ import annotations

import strawberry

from app.models.notifier import (
    AttemptOutcome,
    CancelReason,
    ContractType,
    EmailOrigin,
    EmailStatus,
)
from app.services.notifier.codes import NotifierErrorCode

strawberry.enum(
    NotifierErrorCode,
    name="NotifierErrorCode",
    description=(
        "Why a notifier mutation was refused (`field` names the input). UNKNOWN_EVENT_TYPE: "
        "`type` is not one of the event types. MISSING_FIELD / INVALID_FIELD: a payload field "
        "(`payload.<name>`) is absent or of the wrong type, or the payload has a field its "
        "type doesn't declare. UNKNOWN_CLIENT: no client has `clientId` (register it with "
        "`corpClientUpsert` first). INVALID_IDEMPOTENCY_KEY: 1-100 printable characters. "
        "IDEMPOTENCY_KEY_REUSED: the key was published with other content. INVALID_CLIENT_ID, "
        "INVALID_NAME, INVALID_EMAIL (`emails[i]`), INVALID_CURRENCY, INVALID_AMOUNT, "
        "INVALID_LOCALE (ru or en), INVALID_TIMEZONE (IANA): a bad value. UNKNOWN_NOTICE: no "
        "such notice. INVALID_RULE: a rule definition that can't be used (the message names "
        "the entry). INVALID_TEMPLATE: a template that doesn't render (the message gives the "
        "part and line). NOT_FOUND. NOT_CANCELLABLE: only a SCHEDULED email can be cancelled. "
        "NOT_RESENDABLE: only a SENT or FAILED email can be sent again. CRITICAL_NOTICE: a "
        "critical notice can't be unsubscribed from. INVALID_REASON: 1-500 characters."
    ),
)
strawberry.enum(ContractType, name="CorpContractType", description="PREPAID or POSTPAID.")
strawberry.enum(
    EmailStatus,
    name="CorpEmailStatus",
    description=(
        "SCHEDULED: waiting for its time (or for a retry). SENDING: a dispatcher holds it. "
        "SENT. CANCELLED: withdrawn, see `cancelReason`. FAILED: a permanent error, or out of "
        "attempts; `lastError` says why."
    ),
)
strawberry.enum(
    CancelReason,
    name="CorpEmailCancelReason",
    description=(
        "EVENT: a cancel event withdrew it (a top-up, a first ride). CONDITION: at send time "
        "the client had already done the thing. EXPIRED: it could not go out before its "
        "expiry (never sent late). THROTTLED: the client had the most of this notice its "
        "period allows. UNSUBSCRIBED: the client unsubscribed from the notice. NO_RECIPIENTS. "
        "ADMIN: an operator cancelled it."
    ),
)
strawberry.enum(
    EmailOrigin,
    name="CorpEmailOrigin",
    description="EVENT: a rule scheduled it. MANUAL: sent by hand. RESEND: a copy of `parent`.",
)
strawberry.enum(
    AttemptOutcome,
    name="CorpDeliveryOutcome",
    description="SENT; RETRY: a transient error, tried again later; FAILED: given up.",
)


@strawberry.type(description="A refused notifier mutation: what was wrong, and where.")
class NotifierError:
    code: NotifierErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault (camelCase).")
    message: str = strawberry.field(description="A human-readable explanation.")
