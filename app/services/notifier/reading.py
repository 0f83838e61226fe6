"""The reads the admin API needs: the email history (filtered, paged), emails, attempts and
resends by ids (for DataLoaders), rules with their versions, notices with their current
templates, clients. Low volume, so plain SQLAlchemy.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.notifier import (
    CorpClient,
    DeliveryAttempt,
    EmailStatus,
    Notice,
    NoticePreference,
    NoticeTemplate,
    NotifierRule,
    NotifierRuleVersion,
    QueuedEmail,
)
from app.services.errors import DomainError
from app.services.notifier.codes import NotifierErrorCode as Code
from app.services.pagination import OffsetPage, PageRows, fetch_page


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    client_id: str | None = None
    notice: str | None = None
    statuses: Sequence[EmailStatus] = ()
    since: datetime | None = None  # send_at at or after
    until: datetime | None = None  # send_at before


async def history(
    session: AsyncSession, where: HistoryFilter, page: OffsetPage
) -> PageRows[QueuedEmail]:
    """Emails newest first (by scheduled time); an unknown client id is an empty page."""
    if where.since and where.until and where.since >= where.until:
        raise DomainError(Code.INVALID_FIELD, "`since` must be before `until`.", "filter.since")
    statement = select(QueuedEmail)
    if where.client_id is not None:
        statement = statement.join(CorpClient, CorpClient.id == QueuedEmail.client_id).where(
            CorpClient.external_id == where.client_id
        )
    if where.notice is not None:
        statement = statement.where(QueuedEmail.notice == where.notice)
    if where.statuses:
        statement = statement.where(QueuedEmail.status.in_(list(where.statuses)))
    if where.since is not None:
        statement = statement.where(QueuedEmail.send_at >= where.since)
    if where.until is not None:
        statement = statement.where(QueuedEmail.send_at < where.until)
    ordered = statement.order_by(QueuedEmail.send_at.desc(), QueuedEmail.id.desc())
    return await fetch_page(session, ordered, page)


async def emails_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, QueuedEmail]:
    found = await session.scalars(select(QueuedEmail).where(QueuedEmail.id.in_(list(ids))))
    return {email.id: email for email in found}


async def attempts_by_email(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DeliveryAttempt]]:
    rows = await session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.email_id.in_(list(ids)))
        .order_by(DeliveryAttempt.attempt, DeliveryAttempt.at)
    )
    grouped: dict[uuid.UUID, list[DeliveryAttempt]] = defaultdict(list)
    for row in rows:
        grouped[row.email_id].append(row)
    return grouped


async def resends_by_parent(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[QueuedEmail]]:
    rows = await session.scalars(
        select(QueuedEmail)
        .where(QueuedEmail.parent_id.in_(list(ids)))
        .order_by(QueuedEmail.created_at)
    )
    grouped: dict[uuid.UUID, list[QueuedEmail]] = defaultdict(list)
    for row in rows:
        assert row.parent_id is not None
        grouped[row.parent_id].append(row)
    return grouped


async def clients_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CorpClient]:
    found = await session.scalars(select(CorpClient).where(CorpClient.id.in_(list(ids))))
    return {client.id: client for client in found}


async def client_by_external_id(session: AsyncSession, client_id: str) -> CorpClient | None:
    if len(client_id) > 64:
        return None
    return await session.scalar(select(CorpClient).where(CorpClient.external_id == client_id))


async def unsubscribed_notices(session: AsyncSession, client_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        select(NoticePreference.notice)
        .where(NoticePreference.client_id == client_id, NoticePreference.unsubscribed.is_(True))
        .order_by(NoticePreference.notice)
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: NotifierRule
    versions: list[NotifierRuleVersion]  # newest first

    @property
    def current(self) -> NotifierRuleVersion | None:
        return next((v for v in self.versions if v.version == self.rule.current_version), None)


async def rules(session: AsyncSession) -> list[RuleView]:
    found = list(await session.scalars(select(NotifierRule).order_by(NotifierRule.key)))
    versions = await session.scalars(
        select(NotifierRuleVersion).order_by(NotifierRuleVersion.version.desc())
    )
    grouped: dict[uuid.UUID, list[NotifierRuleVersion]] = defaultdict(list)
    for version in versions:
        grouped[version.rule_id].append(version)
    return [RuleView(rule, grouped[rule.id]) for rule in found]


@dataclass(frozen=True, slots=True)
class NoticeView:
    notice: Notice
    templates: list[NoticeTemplate]  # the current one per locale


async def notices(session: AsyncSession) -> list[NoticeView]:
    found = list(await session.scalars(select(Notice).order_by(Notice.key)))
    current: dict[tuple[str, str], NoticeTemplate] = {}
    for template in await session.scalars(select(NoticeTemplate).order_by(NoticeTemplate.version)):
        current[(template.notice, template.locale)] = template
    return [
        NoticeView(
            notice,
            sorted(
                (t for (key, _), t in current.items() if key == notice.key),
                key=lambda t: t.locale,
            ),
        )
        for notice in found
    ]
