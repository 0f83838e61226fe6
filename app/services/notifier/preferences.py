"""Per-client preferences: a client may unsubscribe from a notice, unless it is critical
(a limit used up, a block lifted, a balance too low to ride: they stop or start service).

The dispatcher honours a preference at send time, so an unsubscribe also stops emails that
were queued before it; subscribing again lets later ones through. Every change is audited.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.base import utcnow
from app.models.identity import AuditLog
from app.models.notifier import CorpClient, Notice, NoticePreference
from app.services.errors import DomainError
from app.services.notifier.codes import NotifierErrorCode as Code


async def set_unsubscribed(
    session: AsyncSession, client: CorpClient, notice_key: str, unsubscribed: bool, *, actor: str
) -> NoticePreference:
    notice = await session.get(Notice, notice_key) if len(notice_key) <= 64 else None
    if notice is None:
        raise DomainError(Code.UNKNOWN_NOTICE, "No notice has this name.", "notice")
    if notice.critical and unsubscribed:
        raise DomainError(
            Code.CRITICAL_NOTICE, f"{notice.key} is critical: it can't be turned off.", "notice"
        )
    now = utcnow()
    statement = upsert_insert(session, NoticePreference).values(
        client_id=client.id,
        notice=notice.key,
        unsubscribed=unsubscribed,
        changed_by=actor,
        created_at=now,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["client_id", "notice"],
            set_={"unsubscribed": unsubscribed, "changed_by": actor, "updated_at": now},
        )
    )
    action = "notifier.unsubscribe" if unsubscribed else "notifier.subscribe"
    session.add(
        AuditLog(actor=actor, action=action, target=f"corp_client:{client.id}:{notice.key}")
    )
    found = await session.get(NoticePreference, (client.id, notice.key), populate_existing=True)
    assert found is not None
    return found
