"""Admins edit rules and templates: every edit is a new version, checked before it is saved,
and audited.

- A rule edit is checked in full (`rules.parse_rule`, with the notices that exist) and then
  written as version N+1, which becomes current; emails already scheduled keep the version
  that scheduled them (their steps, send-time checks and cancel events).
- A template edit is rendered against sample data first (`templates.check`); a template
  with errors is never saved, and the errors come back with their part and line. The new
  version is used by every email sent from then on, queued ones included.
- `preview` renders a saved or proposed template for a client (or sample data) without
  saving anything.
Edits of one rule or template take turns (`serialize_on`), so two admins saving at once get
versions N+1 and N+2, never two N+1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import serialize_on
from app.models.identity import AuditLog
from app.models.notifier import (
    CorpClient,
    Notice,
    NoticeTemplate,
    NotifierRule,
    NotifierRuleVersion,
)
from app.services.errors import DomainError
from app.services.notifier import templates
from app.services.notifier.catalog import LOCALES, RULE_KEY, current_template
from app.services.notifier.clients import template_client
from app.services.notifier.codes import NotifierErrorCode as Code
from app.services.notifier.rules import Rule, RuleError, parse_rule

MAX_DEFINITION_BYTES = 16_384


def check_reason(reason: str) -> str:
    """An operator's reason for an edit or an action: 1-500 characters."""
    text = reason.strip()
    if not 1 <= len(text) <= 500:
        raise DomainError(Code.INVALID_REASON, "Say why, in 1-500 characters.", "reason")
    return text


async def notice_keys(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(Notice.key)))


async def _notice(session: AsyncSession, key: str, field: str = "notice") -> Notice:
    found = await session.get(Notice, key) if len(key) <= 64 else None
    if found is None:
        raise DomainError(Code.UNKNOWN_NOTICE, "No notice has this name.", field)
    return found


def check_rule(definition: Any, notices: set[str]) -> Rule:
    if not isinstance(definition, Mapping):
        raise DomainError(Code.INVALID_RULE, "A rule definition is an object.", "definition")
    if len(repr(definition)) > MAX_DEFINITION_BYTES:
        raise DomainError(Code.INVALID_RULE, "A rule definition is at most 16 KiB.", "definition")
    try:
        return parse_rule(definition, notices=notices)
    except RuleError as exc:
        code = Code.UNKNOWN_NOTICE if exc.unknown_notice else Code.INVALID_RULE
        raise DomainError(code, exc.message, f"definition.{exc.field}") from exc


async def save_rule(
    session: AsyncSession,
    key: str,
    definition: Any,
    *,
    active: bool | None,
    actor: str,
    reason: str,
) -> tuple[NotifierRule, NotifierRuleVersion]:
    """Write `definition` as the rule's next version (or its first: a new rule)."""
    why = check_reason(reason)
    if not RULE_KEY.match(key):
        raise DomainError(Code.INVALID_RULE, "A rule key is 1-64 of a-z, 0-9, - and _.", "key")
    rule_data = check_rule(definition, await notice_keys(session))
    await serialize_on(session, f"notifier:rule:{key}")
    rule = await session.scalar(
        select(NotifierRule).where(NotifierRule.key == key).with_for_update()
    )
    if rule is None:
        rule = NotifierRule(key=key, event_type=rule_data.event, current_version=0, active=True)
        session.add(rule)
        await session.flush()
    rule.current_version += 1
    rule.event_type = rule_data.event
    if active is not None:
        rule.active = active
    version = NotifierRuleVersion(
        rule_id=rule.id,
        version=rule.current_version,
        definition=dict(definition),
        catalog_version=None,
        created_by=actor,
    )
    session.add(version)
    session.add(
        AuditLog(
            actor=actor,
            action="notifier.rule.save",
            target=f"notifier_rule:{key}@{rule.current_version}",
            reason=why,
        )
    )
    await session.flush()
    return rule, version


def _source(subject: str, text: str, html: str) -> templates.TemplateSource:
    return templates.TemplateSource(subject=subject, text=text, html=html)


def template_problems(source: templates.TemplateSource, locale: str) -> list[str]:
    return [str(problem) for problem in templates.check(source, locale)]


async def save_template(
    session: AsyncSession,
    notice: str,
    locale: str,
    source: templates.TemplateSource,
    *,
    actor: str,
    reason: str,
) -> NoticeTemplate:
    """Save a checked template as the notice's next version in `locale`."""
    why = check_reason(reason)
    await _notice(session, notice)
    if locale not in LOCALES:
        raise DomainError(Code.INVALID_LOCALE, "The locale is ru or en.", "locale")
    problems = templates.check(source, locale)
    if problems:
        first = problems[0]
        raise DomainError(
            Code.INVALID_TEMPLATE,
            "; ".join(str(problem) for problem in problems)[:2000],
            first.part,
        )
    await serialize_on(session, f"notifier:template:{notice}:{locale}")
    current = await current_template(session, notice, locale)
    row = NoticeTemplate(
        notice=notice,
        locale=locale,
        version=(current.version + 1) if current else 1,
        subject=source.subject,
        text_body=source.text,
        html_body=source.html,
        created_by=actor,
    )
    session.add(row)
    session.add(
        AuditLog(
            actor=actor,
            action="notifier.template.save",
            target=f"notifier_template:{notice}/{locale}@{row.version}",
            reason=why,
        )
    )
    await session.flush()
    return row


async def preview(
    session: AsyncSession,
    notice: str,
    locale: str,
    *,
    source: templates.TemplateSource | None,
    client: CorpClient | None,
    cabinet_url: str,
) -> templates.Rendered:
    """Render `source` (or the notice's current template) for `client` (or sample data)."""
    await _notice(session, notice)
    if locale not in LOCALES:
        raise DomainError(Code.INVALID_LOCALE, "The locale is ru or en.", "locale")
    if source is None:
        current = await current_template(session, notice, locale)
        if current is None:
            raise DomainError(
                Code.NOT_FOUND, "The notice has no template in this locale.", "locale"
            )
        source = _source(current.subject, current.text_body, current.html_body)
    if client is None:
        values = templates.sample_context(locale)
        values["notice"] = notice
    else:
        values = templates.template_context(
            client=template_client(client),
            event={},
            cabinet_url=cabinet_url,
            notice=notice,
            locale=locale,
        )
    try:
        return templates.render(source, values)
    except templates.TemplateRenderError as exc:
        first = exc.problems[0]
        raise DomainError(
            Code.INVALID_TEMPLATE,
            "; ".join(str(problem) for problem in exc.problems)[:2000],
            first.part,
        ) from exc
