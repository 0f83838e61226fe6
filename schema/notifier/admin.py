"""The notifier's admin types: emails (a Node, with attempts and resends), rules with their
versions, notices with their templates, previews; and the admin inputs and payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.notifier import (
    AttemptOutcome,
    CancelReason,
    DeliveryAttempt,
    EmailOrigin,
    EmailStatus,
    NoticeTemplate,
    NotifierRuleVersion,
    QueuedEmail,
)
from app.services.notifier.reading import NoticeView, RuleView
from schema.context import Context
from schema.notifier.errors import NotifierError
from schema.notifier.loaders import (
    AttemptsByEmailLoader,
    CorpClientByIdLoader,
    EmailByIdLoader,
    ResendsByEmailLoader,
)
from schema.notifier.types import CorpClient
from schema.permissions import visible_nodes

InfoT = Info[Context, Any]


@strawberry.type(description="One try at delivering an email.")
class CorpDeliveryAttempt:
    attempt: int = strawberry.field(description="1 for the first try.")
    outcome: AttemptOutcome
    error: str | None = strawberry.field(description="What the mail server or template said.")
    backend: str = strawberry.field(description="smtp, file, or render (it never got sent).")
    at: datetime

    @classmethod
    def from_model(cls, row: DeliveryAttempt) -> CorpDeliveryAttempt:
        return cls(
            attempt=row.attempt,
            outcome=row.outcome,
            error=row.error,
            backend=row.backend,
            at=row.at,
        )


@strawberry.type(name="CorpEmail", description="An email of the notifier's queue (admin).")
class CorpEmailNode(relay.Node):
    id: relay.NodeID[str]
    notice: str
    origin: EmailOrigin
    status: EmailStatus
    cancel_reason: CancelReason | None
    recipients: list[str]
    locale: str
    send_at: datetime = strawberry.field(description="When it was scheduled for.")
    due_at: datetime = strawberry.field(description="When its next try is due (retries move it).")
    expires_at: datetime | None = strawberry.field(description="Not sent after this.")
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    subject: str | None = strawberry.field(description="The subject it went out with.")
    template_version: int | None
    rule_key: str | None = strawberry.field(description="The rule that scheduled it.")
    requested_by: str | None = strawberry.field(description="The operator, for MANUAL/RESEND.")
    reason: str = strawberry.field(description="The operator's reason, for MANUAL/RESEND.")
    created_at: datetime
    client_row_id: strawberry.Private[uuid.UUID]
    parent_id: strawberry.Private[uuid.UUID | None]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: QueuedEmail) -> CorpEmailNode:
        return cls(
            id=str(row.id),
            notice=row.notice,
            origin=row.origin,
            status=row.status,
            cancel_reason=row.cancel_reason,
            recipients=list(row.recipients),
            locale=row.locale,
            send_at=row.send_at,
            due_at=row.due_at,
            expires_at=row.expires_at,
            sent_at=row.sent_at,
            attempts=row.attempts,
            last_error=row.last_error,
            subject=row.subject,
            template_version=row.template_version,
            rule_key=row.rule_key,
            requested_by=row.requested_by,
            reason=row.reason,
            created_at=row.created_at,
            client_row_id=row.client_id,
            parent_id=row.parent_id,
            row_id=row.id,
        )

    @strawberry.field(description="The client it is for.")
    async def client(self, info: InfoT) -> CorpClient | None:
        found = await info.context.loaders[CorpClientByIdLoader].load(self.client_row_id)
        return CorpClient.from_model(found) if found is not None else None

    @strawberry.field(description="The email this one was sent again from (RESEND).")
    async def parent(self, info: InfoT) -> CorpEmailNode | None:
        if self.parent_id is None:
            return None
        found = await info.context.loaders[EmailByIdLoader].load(str(self.parent_id))
        return CorpEmailNode.from_model(found) if found is not None else None

    @strawberry.field(description="The emails sent again from this one, oldest first.")
    async def resends(self, info: InfoT) -> list[CorpEmailNode]:
        found = await info.context.loaders[ResendsByEmailLoader].load(self.row_id)
        return [CorpEmailNode.from_model(row) for row in found]

    @strawberry.field(description="Every delivery try, in order.")
    async def delivery_attempts(self, info: InfoT) -> list[CorpDeliveryAttempt]:
        found = await info.context.loaders[AttemptsByEmailLoader].load(self.row_id)
        return [CorpDeliveryAttempt.from_model(row) for row in found]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[CorpEmailNode | None]:
        """Admins only: an email belongs to no user."""
        return await visible_nodes(info, EmailByIdLoader, node_ids, cls.from_model)


@strawberry.type(description="A page of the email history.")
class CorpEmailConnection(relay.Connection[CorpEmailNode]):
    pass


@strawberry.input(description="Which emails the history shows; every field narrows it.")
class CorpEmailFilter:
    client_id: str | None = strawberry.field(default=None, description="A client's id.")
    notice: str | None = None
    statuses: list[EmailStatus] | None = None
    since: datetime | None = strawberry.field(default=None, description="Scheduled at or after.")
    until: datetime | None = strawberry.field(default=None, description="Scheduled before.")


@strawberry.type(description="One version of a rule (versions never change).")
class NotifierRuleVersionType:
    version: int
    definition: JSON = strawberry.field(description="The rule, in the catalog file's shape.")
    from_catalog: int | None = strawberry.field(
        description="The catalog file version it came from; null: an admin's edit."
    )
    created_by: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: NotifierRuleVersion) -> NotifierRuleVersionType:
        return cls(
            version=row.version,
            definition=JSON(row.definition),
            from_catalog=row.catalog_version,
            created_by=row.created_by,
            created_at=row.created_at,
        )


@strawberry.type(name="NotifierRule", description="An event type → the emails it may send.")
class NotifierRuleType:
    key: str
    event_type: str
    active: bool
    current_version: int
    current: NotifierRuleVersionType | None
    versions: list[NotifierRuleVersionType] = strawberry.field(description="Newest first.")

    @classmethod
    def from_view(cls, view: RuleView) -> NotifierRuleType:
        current = view.current
        return cls(
            key=view.rule.key,
            event_type=str(view.rule.event_type),
            active=view.rule.active,
            current_version=view.rule.current_version,
            current=NotifierRuleVersionType.from_model(current) if current else None,
            versions=[NotifierRuleVersionType.from_model(v) for v in view.versions],
        )


@strawberry.type(description="A notice's current template in one locale.")
class NoticeTemplateType:
    locale: str
    version: int
    subject: str
    text: str
    html: str
    created_by: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: NoticeTemplate) -> NoticeTemplateType:
        return cls(
            locale=row.locale,
            version=row.version,
            subject=row.subject,
            text=row.text_body,
            html=row.html_body,
            created_by=row.created_by,
            created_at=row.created_at,
        )


@strawberry.type(name="Notice", description="A kind of email, with its templates.")
class NoticeType:
    key: str
    critical: bool = strawberry.field(description="Critical notices can't be unsubscribed.")
    description: str
    templates: list[NoticeTemplateType]

    @classmethod
    def from_view(cls, view: NoticeView) -> NoticeType:
        return cls(
            key=view.notice.key,
            critical=view.notice.critical,
            description=view.notice.description,
            templates=[NoticeTemplateType.from_model(t) for t in view.templates],
        )


@strawberry.type(description="A rendered email (nothing was saved or sent).")
class NotifierRendered:
    subject: str
    text: str
    html: str


@strawberry.type(description="A preview, or why the template doesn't render.")
class NotifierPreviewPayload:
    rendered: NotifierRendered | None = None
    errors: list[NotifierError]


@strawberry.input(description="An email to send by hand: a configured notice to a client.")
class CorpEmailSendInput:
    client_id: str
    notice: str
    reason: str = strawberry.field(description="Why, for the history (1-500 characters).")
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key again returns the first email."
    )


@strawberry.input(description="Send an email again: a new email linked to the original.")
class CorpEmailResendInput:
    email_id: strawberry.ID = strawberry.field(description="The CorpEmail's global id.")
    reason: str
    idempotency_key: str | None = None


@strawberry.input(description="Cancel a scheduled email.")
class CorpEmailCancelInput:
    email_id: strawberry.ID
    reason: str


@strawberry.type(description="The email, or why not.")
class CorpEmailPayload:
    email: CorpEmailNode | None = None
    errors: list[NotifierError]


@strawberry.input(description="A rule's next version (or a new rule).")
class NotifierRuleSaveInput:
    key: str = strawberry.field(description="1-64 of a-z, 0-9, - and _.")
    definition: JSON = strawberry.field(
        description="event, when, steps, still_due, cancel_on, expires_after_hours, throttle "
        "(docs/notifier.md)."
    )
    active: bool | None = strawberry.field(default=None, description="null: unchanged.")
    reason: str


@strawberry.type(description="The saved rule, or why not.")
class NotifierRulePayload:
    rule: NotifierRuleType | None = None
    errors: list[NotifierError]


@strawberry.input(description="A notice's next template version in one locale.")
class NotifierTemplateSaveInput:
    notice: str
    locale: str = strawberry.field(description="ru or en.")
    subject: str
    text: str
    html: str
    reason: str


@strawberry.type(description="The saved template, or why not (part and line).")
class NotifierTemplatePayload:
    template: NoticeTemplateType | None = None
    errors: list[NotifierError]


@strawberry.input(description="Preview a notice: its current template, or a proposed one.")
class NotifierPreviewInput:
    notice: str
    locale: str
    client_id: str | None = strawberry.field(default=None, description="null: sample data.")
    subject: str | None = strawberry.field(default=None, description="All three, or none.")
    text: str | None = None
    html: str | None = None


@strawberry.input(description="Unsubscribe a client from a notice, or subscribe it again.")
class CorpPreferenceSetInput:
    client_id: str
    notice: str
    unsubscribed: bool


@strawberry.type(description="The client's unsubscribed notices, or why not.")
class CorpPreferencePayload:
    unsubscribed_notices: list[str] | None = None
    errors: list[NotifierError]


@strawberry.type(description="Whether a dispatch was enqueued.")
class NotifierDispatchPayload:
    enqueued: bool
