"""The notifier for operators (ADMIN): the email history, rules, notices, previews; sending
by hand, again, cancelling, editing rules and templates, preferences, dispatching now."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.notifier import editing, operator, preferences, reading
from app.services.notifier.codes import NotifierErrorCode as Code
from app.services.notifier.templates import TemplateSource
from schema.base import offset_connection, offset_page
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.notifier.admin import (
    CorpEmailCancelInput,
    CorpEmailConnection,
    CorpEmailFilter,
    CorpEmailNode,
    CorpEmailPayload,
    CorpEmailResendInput,
    CorpEmailSendInput,
    CorpPreferencePayload,
    CorpPreferenceSetInput,
    NoticeTemplateType,
    NoticeType,
    NotifierDispatchPayload,
    NotifierPreviewInput,
    NotifierPreviewPayload,
    NotifierRendered,
    NotifierRulePayload,
    NotifierRuleSaveInput,
    NotifierRuleType,
    NotifierTemplatePayload,
    NotifierTemplateSaveInput,
)
from schema.notifier.errors import NotifierError
from schema.notifier.types import CorpClient
from schema.permissions import require

InfoT = Info[Context, Any]


def _filter(where: CorpEmailFilter | None) -> reading.HistoryFilter:
    if where is None:
        return reading.HistoryFilter()
    return reading.HistoryFilter(
        client_id=where.client_id,
        notice=where.notice,
        statuses=tuple(where.statuses or ()),
        since=where.since,
        until=where.until,
    )


def _email_id(value: strawberry.ID) -> Any:
    return node_uuid(value, "CorpEmail", "emailId", Code.NOT_FOUND)


def _proposed(data: NotifierPreviewInput) -> TemplateSource | None:
    parts = (data.subject, data.text, data.html)
    if all(part is None for part in parts):
        return None
    if any(part is None for part in parts):
        raise DomainError(
            Code.INVALID_TEMPLATE, "Give subject, text and html together (or none).", "subject"
        )
    return TemplateSource(subject=data.subject or "", text=data.text or "", html=data.html or "")


@strawberry.type
class NotifierAdminQuery:
    @strawberry.field(description="The email history, newest first (admin).")
    async def corp_emails(
        self,
        info: InfoT,
        filter: CorpEmailFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> CorpEmailConnection:
        await require(info, Role.ADMIN)
        page = offset_page(first, after, info.context.settings.max_page_size)
        try:
            found = await reading.history(info.context.session, _filter(filter), page)
        except DomainError:
            found = reading.PageRows([], False)
        nodes = [CorpEmailNode.from_model(row) for row in found.rows]
        return offset_connection(CorpEmailConnection, nodes, page, found.has_next)  # type: ignore[return-value]

    @strawberry.field(description="A corporate client by its id; null if unknown (admin).")
    async def corp_client(self, info: InfoT, client_id: str) -> CorpClient | None:
        await require(info, Role.ADMIN)
        found = await reading.client_by_external_id(info.context.session, client_id)
        return CorpClient.from_model(found) if found is not None else None

    @strawberry.field(description="Every rule with its versions (admin).")
    async def notifier_rules(self, info: InfoT) -> list[NotifierRuleType]:
        await require(info, Role.ADMIN)
        return [NotifierRuleType.from_view(v) for v in await reading.rules(info.context.session)]

    @strawberry.field(description="Every notice with its current templates (admin).")
    async def notifier_notices(self, info: InfoT) -> list[NoticeType]:
        await require(info, Role.ADMIN)
        return [NoticeType.from_view(v) for v in await reading.notices(info.context.session)]

    @strawberry.field(
        description="Render a notice for a client or sample data; saves and sends nothing."
    )
    async def notifier_preview(
        self, info: InfoT, input: NotifierPreviewInput
    ) -> NotifierPreviewPayload:
        await require(info, Role.ADMIN)
        session = info.context.session
        try:
            client = None
            if input.client_id is not None:
                client = await operator.client_by_key(session, input.client_id)
            rendered = await editing.preview(
                session,
                input.notice,
                input.locale,
                source=_proposed(input),
                client=client,
                cabinet_url=info.context.settings.notifier_cabinet_url,
            )
        except DomainError as exc:
            return NotifierPreviewPayload(errors=payload_errors(NotifierError, exc))
        return NotifierPreviewPayload(
            rendered=NotifierRendered(
                subject=rendered.subject, text=rendered.text, html=rendered.html
            ),
            errors=[],
        )


async def _email_payload(info: InfoT, action: Any) -> CorpEmailPayload:
    try:
        email = await action()
    except DomainError as exc:
        return CorpEmailPayload(errors=payload_errors(NotifierError, exc))
    return CorpEmailPayload(email=CorpEmailNode.from_model(email), errors=[])


@strawberry.type
class NotifierAdminMutation:
    @strawberry.mutation(description="Send a configured notice to a client now (admin).")
    async def corp_email_send(self, info: InfoT, input: CorpEmailSendInput) -> CorpEmailPayload:
        principal = await require(info, Role.ADMIN)
        session = info.context.session

        async def send() -> Any:
            client = await operator.client_by_key(session, input.client_id)
            return await operator.send_notice(
                session,
                client,
                input.notice,
                actor=principal.key,
                reason=input.reason,
                idempotency_key=input.idempotency_key,
            )

        return await _email_payload(info, send)

    @strawberry.mutation(
        description="Send a SENT or FAILED email again, as a new email linked to it (admin)."
    )
    async def corp_email_resend(self, info: InfoT, input: CorpEmailResendInput) -> CorpEmailPayload:
        principal = await require(info, Role.ADMIN)

        async def send() -> Any:
            return await operator.resend(
                info.context.session,
                _email_id(input.email_id),
                actor=principal.key,
                reason=input.reason,
                idempotency_key=input.idempotency_key,
            )

        return await _email_payload(info, send)

    @strawberry.mutation(description="Cancel a SCHEDULED email (admin).")
    async def corp_email_cancel(self, info: InfoT, input: CorpEmailCancelInput) -> CorpEmailPayload:
        principal = await require(info, Role.ADMIN)

        async def cancel() -> Any:
            return await operator.cancel(
                info.context.session,
                _email_id(input.email_id),
                actor=principal.key,
                reason=input.reason,
            )

        return await _email_payload(info, cancel)

    @strawberry.mutation(
        description="Save a rule's next version (admin); emails already scheduled keep theirs."
    )
    async def notifier_rule_save(
        self, info: InfoT, input: NotifierRuleSaveInput
    ) -> NotifierRulePayload:
        principal = await require(info, Role.ADMIN)
        session = info.context.session
        try:
            await editing.save_rule(
                session,
                input.key,
                input.definition,
                active=input.active,
                actor=principal.key,
                reason=input.reason,
            )
        except DomainError as exc:
            return NotifierRulePayload(errors=payload_errors(NotifierError, exc))
        views = {view.rule.key: view for view in await reading.rules(session)}
        return NotifierRulePayload(rule=NotifierRuleType.from_view(views[input.key]), errors=[])

    @strawberry.mutation(
        description="Save a notice's next template (admin); one that doesn't render is refused "
        "with the part and line."
    )
    async def notifier_template_save(
        self, info: InfoT, input: NotifierTemplateSaveInput
    ) -> NotifierTemplatePayload:
        principal = await require(info, Role.ADMIN)
        source = TemplateSource(subject=input.subject, text=input.text, html=input.html)
        try:
            row = await editing.save_template(
                info.context.session,
                input.notice,
                input.locale,
                source,
                actor=principal.key,
                reason=input.reason,
            )
        except DomainError as exc:
            return NotifierTemplatePayload(errors=payload_errors(NotifierError, exc))
        return NotifierTemplatePayload(template=NoticeTemplateType.from_model(row), errors=[])

    @strawberry.mutation(
        description="Unsubscribe a client from a notice, or subscribe it again (admin); "
        "critical notices can't be unsubscribed."
    )
    async def corp_preference_set(
        self, info: InfoT, input: CorpPreferenceSetInput
    ) -> CorpPreferencePayload:
        principal = await require(info, Role.ADMIN)
        session = info.context.session
        try:
            client = await operator.client_by_key(session, input.client_id)
            await preferences.set_unsubscribed(
                session, client, input.notice, input.unsubscribed, actor=principal.key
            )
        except DomainError as exc:
            return CorpPreferencePayload(errors=payload_errors(NotifierError, exc))
        notices = await reading.unsubscribed_notices(session, client.id)
        return CorpPreferencePayload(unsubscribed_notices=notices, errors=[])

    @strawberry.mutation(description="Run the dispatcher now rather than at the minute (admin).")
    async def notifier_dispatch(self, info: InfoT) -> NotifierDispatchPayload:
        await require(info, Role.ADMIN)
        await operator.dispatch_now(info.context.session)
        return NotifierDispatchPayload(enqueued=True)
