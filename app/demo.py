"""Demo data for a first look: an admin, a few users, a service token, printed tokens."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import AccessTokenCodec
from app.db import create_engine, create_session_factory
from app.demo_family import family_try, load_demo_family
from app.demo_goals import load_demo_goals, order_record_example
from app.demo_notifier import deliver_demo_mail, load_demo_notifier, notifier_try
from app.demo_promocodes import DEMO_CODES, load_demo_promocodes
from app.demo_promotions import PROMOTION_TRY, load_demo_promotions
from app.models.base import utcnow
from app.models.identity import Role, ServiceToken, User
from app.notifier_commands import ensure_catalog
from app.services.identity import groups as group_service
from app.services.identity import sessions as session_service
from app.services.identity import users as user_service
from app.settings import Settings
from app.uow import unit_of_work

ADMIN_EMAIL = "admin@example.com"
DEMO_PASSWORD = "engage-demo-password"
DEMO_USERS = ("anna@example.com", "boris@example.com", "vera@example.com")
DEMO_PHONES = ("+79160000001", "+79160000002", "+79160000003")
SERVICE_NAME = "demo-order-system"


async def load_demo(settings: Settings, *, only_once: bool = False) -> int:
    engine = create_engine(settings)
    codec = AccessTokenCodec(settings)
    factory = create_session_factory(engine)
    demo_event = None
    family_text = ""
    try:
        await ensure_catalog(factory)
        async with unit_of_work(factory) as session:
            if await session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)):
                if only_once:
                    print("demo data already loaded; sign in as the users below.")
                    _print_logins()
                    return 0
                print("demo data already loaded; issuing fresh tokens.")
                admin = await session.scalar(select(User).where(User.email == ADMIN_EMAIL))
                user = await session.scalar(select(User).where(User.email == DEMO_USERS[0]))
                service_secret = None
            else:
                admin = await user_service.create_admin(
                    session, ADMIN_EMAIL, DEMO_PASSWORD, settings
                )
                users = [
                    await user_service.register(
                        session,
                        user_service.Registration(email=email, phone=phone, password=DEMO_PASSWORD),
                        settings,
                    )
                    for email, phone in zip(DEMO_USERS, DEMO_PHONES, strict=True)
                ]
                user = users[0]
                group = await group_service.create_group(
                    session, "demo", "Early adopters", "Users who joined the beta"
                )
                await group_service.add_members(
                    session, "demo", group.id, [u.id for u in users[:2]]
                )
                service_secret = await _service_token(session)
                await load_demo_promocodes(session, group)
                await load_demo_goals(session, admin, users, utcnow())
                await load_demo_promotions(session, admin, users[2])
                demo_event = await load_demo_notifier(session, f"user:{admin.id}")
                family_id = await load_demo_family(session, users[1], [users[0], users[2]])
                family_text = family_try(family_id, users[2])
            assert admin is not None and user is not None
            admin_tokens = await session_service.issue_tokens(
                session, admin, uuid.uuid4(), codec, settings
            )
            user_tokens = await session_service.issue_tokens(
                session, user, uuid.uuid4(), codec, settings
            )
        mail = await deliver_demo_mail(settings, factory, demo_event) if demo_event else None
    finally:
        await engine.dispose()
    _print_logins()
    print(f"\nUSER  access token ({DEMO_USERS[0]}):\n  Bearer {user_tokens.access_token}")
    print(f"ADMIN access token ({ADMIN_EMAIL}):\n  Bearer {admin_tokens.access_token}")
    if service_secret:
        print(f"SERVICE token ({SERVICE_NAME}), shown once:\n  Bearer {service_secret}")
    print(
        "\nGoals: anna has `comfort-3` active and `night-owl-2` next; boris has `wallet-week`."
        "\nRecord a ride for anna with the SERVICE token (then, as anna, "
        "query { viewer { goals { active { title progress { current total } } } } }):\n"
        + order_record_example(user, utcnow())
    )
    print("\nPromocodes to try (plans: monthly, yearly): " + ", ".join(c[0] for c in DEMO_CODES))
    print(PROMOTION_TRY)
    if family_text:
        print(family_text)
    if mail:
        print(notifier_try(mail))
    print(
        "\nPaste one into GraphiQL's Headers tab as "
        '{"Authorization": "Bearer <token>"} and run: query { viewer { user { email roles } } }'
    )
    return 0


async def _service_token(session: AsyncSession) -> str:
    if await session.scalar(select(ServiceToken.id).where(ServiceToken.name == SERVICE_NAME)):
        return ""
    _, secret = await session_service.create_service_token(session, SERVICE_NAME, [Role.SERVICE])
    return secret


def _print_logins() -> None:
    print(f"admin: {ADMIN_EMAIL} / {DEMO_PASSWORD}")
    for email in DEMO_USERS:
        print(f"user:  {email} / {DEMO_PASSWORD}")
