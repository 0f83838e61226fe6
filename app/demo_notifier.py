"""Demo notifier: a corporate client whose contract is activated, and its welcome email
delivered at once, as a .eml file under MAIL_FILE_DIR (or over SMTP when SMTP_URL is set)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import SessionFactory
from app.integrations.mail import mail_backend
from app.models.notifier import ContractType
from app.services.notifier import clients, publishing
from app.services.notifier.handling import handle_event
from app.settings import Settings
from app.uow import unit_of_work

DEMO_CLIENT = "demo-acme"


async def load_demo_notifier(session: AsyncSession, actor: str) -> uuid.UUID:
    """The client and its CONTRACT_ACTIVATED event; returns the event's id."""
    await clients.upsert_client(
        session,
        clients.ClientInput(
            client_id=DEMO_CLIENT,
            name="Acme Logistics",
            emails=["finance@acme.example.com"],
            contract_type=ContractType.PREPAID,
            currency="RUB",
            low_balance_threshold_minor=500_000,
            locale="en",
            timezone="Europe/Moscow",
            balance_minor=1_000_000,
        ),
        actor=actor,
    )
    published = await publishing.publish(
        session,
        type_name="CONTRACT_ACTIVATED",
        client_id=DEMO_CLIENT,
        payload={"contractType": "PREPAID", "service": "TAXI"},
        idempotency_key=f"{DEMO_CLIENT}-activated",
        publisher=actor,
    )
    return published.event_id


async def deliver_demo_mail(
    settings: Settings, session_factory: SessionFactory, event_id: uuid.UUID
) -> str:
    """Handle the event and send what is due now; says where the mail went."""
    from jobs.notifier import dispatch_all, dispatch_config

    async with unit_of_work(session_factory) as session:
        await handle_event(session, event_id)
    backend = mail_backend(settings)
    totals = await dispatch_all(
        lambda: unit_of_work(session_factory), backend, dispatch_config(settings)
    )
    where = f"files under {settings.mail_file_dir}/" if backend.name == "file" else "SMTP"
    return f"{totals.sent} email(s) sent to {where}"


def notifier_try(where: str) -> str:
    return (
        f"\nNotifier: {DEMO_CLIENT}'s contract was activated; its welcome email went out "
        f"({where}). With the SERVICE token, drop its balance below the threshold:\n"
        '  mutation { corpEventPublish(input: {type: "BALANCE_CHANGED", clientId: '
        f'"{DEMO_CLIENT}", payload: {{balanceMinor: 1000, currency: "RUB"}}, '
        'idempotencyKey: "<any new key>"}) { eventId duplicate errors { code field } } }\n'
        "  and a LowBalanceNotice lands beside it within seconds; as admin, "
        "query { corpEmails(first: 5) { edges { node { notice status sentAt } } } }."
    )
