"""An event's handling (both backends): what each shipped rule schedules and when (local
times, sequences), what cancel events withdraw, that handling twice changes nothing, and
that a sequence in flight keeps the rule version it started with."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.models.notifier import CancelReason, ContractType, EmailOrigin, EmailStatus
from app.runtime import Runtime
from app.services.notifier.editing import save_rule
from tests.factories.notifier import (
    create_client,
    emails,
    handle,
    load_catalog,
    publish,
    publish_and_handle,
)

OFFER_PREPAID = {"contractType": "PREPAID"}
ACTIVATED_TAXI = {"contractType": "PREPAID", "service": "TAXI"}


def _local(email: Any, zone: str) -> tuple[str, str]:
    at = email.send_at.astimezone(ZoneInfo(zone))
    return (email.notice, at.strftime("%Y-%m-%d %H:%M"))


async def test_a_prepaid_offer_schedules_the_three_reminders_at_ten_local(
    runtime: Runtime,
) -> None:
    await load_catalog(runtime)
    corp = await create_client(
        runtime, timezone="Asia/Yekaterinburg", emails=["a@corp.example.com"]
    )
    occurred = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # 23:30 in Yekaterinburg (UTC+5)
    handled = await publish_and_handle(
        runtime, corp, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID, occurred_at=occurred
    )
    assert handled is not None and handled.scheduled == 3 and handled.cancelled == 0
    queued = await emails(runtime, corp)
    assert [_local(e, "Asia/Yekaterinburg") for e in queued] == [
        ("FirstRemindPrepaidNotice", "2026-12-02 10:00"),
        ("SecondRemindPrepaidNotice", "2026-12-04 10:00"),
        ("ThirdRemindPrepaidNotice", "2026-12-08 10:00"),
    ]
    for email in queued:
        assert email.status is EmailStatus.SCHEDULED and email.origin is EmailOrigin.EVENT
        assert email.recipients == ["a@corp.example.com"] and email.locale == "ru"
        assert email.due_at == email.send_at
        assert email.expires_at == email.send_at + timedelta(hours=24)
        assert email.rule_key == "prepaid-offer-reminders"


async def test_a_postpaid_offer_schedules_only_the_offer_reminder(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime, contract_type=ContractType.POSTPAID)
    await publish_and_handle(runtime, corp, "CLIENT_CREATED_BY_OFFER", {"contractType": "POSTPAID"})
    assert [e.notice for e in await emails(runtime, corp)] == ["ThirdRemindOfferNotice"]


async def test_local_times_follow_the_zone_across_a_dst_change(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime, timezone="America/New_York")
    # Saturday 2026-03-07 10:00 EST; clocks go forward on Sunday the 8th at 02:00.
    occurred = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    await publish_and_handle(
        runtime, corp, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID, occurred_at=occurred
    )
    queued = await emails(runtime, corp)
    assert [e.send_at for e in queued] == [
        datetime(2026, 3, 8, 14, 0, tzinfo=UTC),  # 10:00 EDT (UTC-4)
        datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 14, 14, 0, tzinfo=UTC),
    ]


async def test_activation_welcomes_schedules_take_a_ride_and_withdraws_offer_reminders(
    runtime: Runtime,
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID)
    handled = await publish_and_handle(runtime, corp, "CONTRACT_ACTIVATED", ACTIVATED_TAXI)
    assert handled is not None and handled.cancelled == 3 and handled.scheduled == 3
    by_notice = {e.notice: e for e in await emails(runtime, corp)}
    for notice in (
        "FirstRemindPrepaidNotice",
        "SecondRemindPrepaidNotice",
        "ThirdRemindPrepaidNotice",
    ):
        assert by_notice[notice].status is EmailStatus.CANCELLED
        assert by_notice[notice].cancel_reason is CancelReason.EVENT
    for notice in (
        "ActivateClientNotice",
        "PrepaidFirstTakeARideNotice",
        "PrepaidSecondTakeARideNotice",
    ):
        assert by_notice[notice].status is EmailStatus.SCHEDULED
    assert "CargoActivateClientNotice" not in by_notice
    assert by_notice["ActivateClientNotice"].expires_at is None


async def test_a_cargo_activation_sends_the_cargo_welcome(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(
        runtime, corp, "CONTRACT_ACTIVATED", {"contractType": "PREPAID", "service": "CARGO"}
    )
    assert [e.notice for e in await emails(runtime, corp)] == ["CargoActivateClientNotice"]


async def test_a_first_ride_withdraws_the_take_a_ride_reminders(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime, contract_type=ContractType.POSTPAID)
    await publish_and_handle(
        runtime, corp, "CONTRACT_ACTIVATED", {"contractType": "POSTPAID", "service": "TAXI"}
    )
    ride = {"orderId": "o-1", "takenAt": datetime.now(UTC).isoformat()}
    handled = await publish_and_handle(runtime, corp, "RIDE_TAKEN", ride)
    assert handled is not None and handled.cancelled == 2 and handled.scheduled == 0
    states = {e.notice: (e.status, e.cancel_reason) for e in await emails(runtime, corp)}
    assert states == {
        "ActivateClientNotice": (EmailStatus.SCHEDULED, None),
        "PostpaidFirstTakeARideNotice": (EmailStatus.CANCELLED, CancelReason.EVENT),
        "PostpaidSecondTakeARideNotice": (EmailStatus.CANCELLED, CancelReason.EVENT),
    }


async def test_low_balance_goes_only_to_prepaid_clients_below_the_threshold(
    runtime: Runtime,
) -> None:
    await load_catalog(runtime)
    low = {"balanceMinor": 100_000, "currency": "RUB"}
    prepaid = await create_client(runtime)
    postpaid = await create_client(runtime, contract_type=ContractType.POSTPAID)
    above = await create_client(runtime, low_balance_threshold_minor=50_000)
    for corp in (prepaid, postpaid, above):
        await publish_and_handle(runtime, corp, "BALANCE_CHANGED", low)
    assert [e.notice for e in await emails(runtime, prepaid)] == ["LowBalanceNotice"]
    assert await emails(runtime, postpaid) == []
    assert await emails(runtime, above) == []


async def test_a_top_up_withdraws_pending_low_balance_reminders(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    later = datetime.now(UTC) - timedelta(seconds=30)
    await publish_and_handle(
        runtime, corp, "BALANCE_CHANGED", {"balanceMinor": 10, "currency": "RUB"}
    )
    # A balance change that stays below the threshold withdraws nothing (and queues again).
    await publish_and_handle(
        runtime, corp, "BALANCE_CHANGED", {"balanceMinor": 20, "currency": "RUB"}, occurred_at=later
    )
    assert [e.status for e in await emails(runtime, corp)] == [EmailStatus.SCHEDULED] * 2
    handled = await publish_and_handle(
        runtime, corp, "PAYMENT_RECEIVED", {"amountMinor": 900_000, "currency": "RUB"}
    )
    assert handled is not None and handled.cancelled == 2
    assert {(e.status, e.cancel_reason) for e in await emails(runtime, corp)} == {
        (EmailStatus.CANCELLED, CancelReason.EVENT)
    }


async def test_a_balance_back_above_the_threshold_withdraws_them_too(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(
        runtime, corp, "BALANCE_CHANGED", {"balanceMinor": 10, "currency": "RUB"}
    )
    handled = await publish_and_handle(
        runtime, corp, "BALANCE_CHANGED", {"balanceMinor": 600_000, "currency": "RUB"}
    )
    assert handled is not None and handled.cancelled == 1 and handled.scheduled == 0


async def test_handling_an_event_twice_changes_nothing(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    published = await publish(runtime, corp, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID)
    assert await handle(runtime, published.event_id) is not None
    before = [(e.id, e.status) for e in await emails(runtime, corp)]
    assert await handle(runtime, published.event_id) is None
    assert [(e.id, e.status) for e in await emails(runtime, corp)] == before


async def test_two_deliveries_at_once_schedule_one_set(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    await load_catalog(runtime)
    corp = await create_client(runtime)
    published = await publish(runtime, corp, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID)
    results = await asyncio.gather(*(handle(runtime, published.event_id) for _ in range(4)))
    assert sum(1 for r in results if r is not None) == 1
    assert len(await emails(runtime, corp)) == 3


async def test_an_onboarding_in_flight_keeps_the_version_it_started_with(
    runtime: Runtime,
) -> None:
    await load_catalog(runtime)
    started = await create_client(runtime)
    await publish_and_handle(runtime, started, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID)
    # Version 2: one reminder on day 2, and a payment no longer withdraws it.
    async with runtime.session_factory() as session, session.begin():
        await save_rule(
            session,
            "prepaid-offer-reminders",
            {
                "event": "CLIENT_CREATED_BY_OFFER",
                "when": ["event.contractType == 'PREPAID'"],
                "steps": [{"notice": "FirstRemindPrepaidNotice", "days": 2, "at": "09:00"}],
                "cancel_on": [{"event": "CONTRACT_ACTIVATED"}],
            },
            active=None,
            actor="admin:test",
            reason="a shorter onboarding",
        )
    newcomer = await create_client(runtime)
    await publish_and_handle(runtime, newcomer, "CLIENT_CREATED_BY_OFFER", OFFER_PREPAID)
    assert len(await emails(runtime, started)) == 3  # version 1's three steps stay
    assert [e.notice for e in await emails(runtime, newcomer)] == ["FirstRemindPrepaidNotice"]
    payment = {"amountMinor": 100, "currency": "RUB"}
    for corp in (started, newcomer):
        await publish_and_handle(runtime, corp, "PAYMENT_RECEIVED", payment)
    # Version 1 is withdrawn by a payment; version 2 is not.
    assert {e.status for e in await emails(runtime, started)} == {EmailStatus.CANCELLED}
    assert {e.status for e in await emails(runtime, newcomer)} == {EmailStatus.SCHEDULED}
