"""The notifier's metrics move after commit, by notice and outcome (both backends)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from app.integrations.mail import SmtpBackend
from app.runtime import Runtime
from app.services.notifier.handling import handle_event
from app.uow import unit_of_work
from tests.factories.notifier import create_client, dispatch, load_catalog, publish
from tests.smtp_server import SmtpServer


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_scheduled_sent_and_cancelled_are_counted(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    notice = {"notice": "CargoActivateClientNotice"}
    before = {
        "scheduled": _value("engage_notifier_emails_scheduled_total", **notice),
        "sent": _value("engage_notifier_emails_sent_total", **notice),
        "lag": _value("engage_notifier_dispatch_lag_seconds_count"),
        "throttled": _value(
            "engage_notifier_emails_cancelled_total", notice="LimitIsOverNotice", reason="THROTTLED"
        ),
    }
    cargo = {"contractType": "PREPAID", "service": "CARGO"}
    events = [
        await publish(runtime, corp, "CONTRACT_ACTIVATED", cargo),
        await publish(runtime, corp, "LIMIT_REACHED", {"limitMinor": 1, "currency": "RUB"}),
        await publish(runtime, corp, "LIMIT_REACHED", {"limitMinor": 2, "currency": "RUB"}),
    ]  # fmt: skip
    for event in events:
        async with unit_of_work(runtime.session_factory) as session:
            await handle_event(session, event.event_id)
    assert _value("engage_notifier_emails_scheduled_total", **notice) == before["scheduled"] + 1
    with SmtpServer() as smtp:
        await dispatch(runtime, SmtpBackend.from_url(smtp.url, timeout=5, validate_certs=False))
    assert _value("engage_notifier_emails_sent_total", **notice) == before["sent"] + 1
    assert _value("engage_notifier_dispatch_lag_seconds_count") == before["lag"] + 2
    throttled = _value(
        "engage_notifier_emails_cancelled_total", notice="LimitIsOverNotice", reason="THROTTLED"
    )
    assert throttled == before["throttled"] + 1


async def test_nothing_is_counted_when_the_transaction_rolls_back(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    published = await publish(runtime, corp, "LIMIT_REACHED", {"limitMinor": 1, "currency": "RUB"})
    before = _value("engage_notifier_emails_scheduled_total", notice="LimitIsOverNotice")

    class Abort(Exception):
        pass

    try:
        async with unit_of_work(runtime.session_factory) as session:
            await handle_event(session, published.event_id)
            raise Abort
    except Abort:
        pass
    assert _value("engage_notifier_emails_scheduled_total", notice="LimitIsOverNotice") == before
