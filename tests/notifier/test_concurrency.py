"""Several dispatchers at once (both backends, each on its own connections and SMTP
connection): no email is sent twice, every one is sent once, and the throttle holds even
when two dispatchers claim two emails of one notice for one client at the same moment."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

from app.integrations.mail import SmtpBackend
from app.models.notifier import CancelReason, EmailStatus
from app.runtime import Runtime
from tests.factories.notifier import (
    CONFIG,
    create_client,
    dispatch,
    emails,
    load_catalog,
    publish_and_handle,
)
from tests.smtp_server import SmtpServer

LIMIT = {"limitMinor": 100_000, "currency": "RUB"}


async def test_dispatchers_at_once_send_every_email_exactly_once(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    await load_catalog(runtime)
    for _ in range(40):
        corp = await create_client(runtime)
        await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
        await publish_and_handle(
            runtime, corp, "CONTRACT_ACTIVATED", {"contractType": "POSTPAID", "service": "CARGO"}
        )
    small_batches = replace(CONFIG, batch_size=7)
    with SmtpServer() as smtp:
        totals = await asyncio.gather(
            *(
                dispatch(
                    runtime,
                    SmtpBackend.from_url(smtp.url, timeout=10.0, validate_certs=False),
                    small_batches,
                )
                for _ in range(4)
            )
        )
        received = await smtp.wait_for(80, timeout=30)
    ids = Counter(str(r.message["Message-ID"]) for r in received)
    assert len(ids) == 80 and set(ids.values()) == {1}
    assert sum(t.sent for t in totals) == 80
    assert {e.status for e in await emails(runtime)} == {EmailStatus.SENT}


async def test_the_throttle_holds_when_two_dispatchers_claim_at_once(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    await load_catalog(runtime)
    corp = await create_client(runtime)
    for _ in range(6):  # six events, six LimitIsOver emails due now; the rule allows 1 a day
        await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    one_each = replace(CONFIG, batch_size=1)
    with SmtpServer() as smtp:
        await asyncio.gather(
            *(
                dispatch(
                    runtime,
                    SmtpBackend.from_url(smtp.url, timeout=10.0, validate_certs=False),
                    one_each,
                )
                for _ in range(3)
            )
        )
        sent = len(smtp.messages)
    outcomes = Counter((e.status, e.cancel_reason) for e in await emails(runtime))
    assert sent == 1
    assert outcomes == {
        (EmailStatus.SENT, None): 1,
        (EmailStatus.CANCELLED, CancelReason.THROTTLED): 5,
    }
