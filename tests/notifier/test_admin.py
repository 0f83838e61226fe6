"""The operators' API (both backends): history with its filters and pages, send by hand,
send again (a tree), cancel, rule and template edits (checked, versioned, audited),
previews and preferences; every refusal names its field and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from strawberry.relay import to_base64

from app.integrations.mail import SmtpBackend
from app.models.base import utcnow
from app.models.identity import AuditLog
from app.models.notifier import EmailStatus, QueuedEmail
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from tests.factories.notifier import (
    create_client,
    dispatch,
    emails,
    load_catalog,
    publish_and_handle,
)
from tests.helpers import gql, row_counts
from tests.promotions.test_admin import admin_token
from tests.smtp_server import SmtpServer

LIMIT = {"limitMinor": 100_000, "currency": "RUB"}
EMAIL_FIELDS = "id notice origin status cancelReason reason requestedBy attempts lastError"
HISTORY = f"""
query History($filter: CorpEmailFilter, $first: Int, $after: String) {{
  corpEmails(filter: $filter, first: $first, after: $after) {{
    edges {{ cursor node {{ {EMAIL_FIELDS} client {{ clientId }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
SEND = f"""
mutation Send($input: CorpEmailSendInput!) {{
  corpEmailSend(input: $input) {{ email {{ {EMAIL_FIELDS} }} errors {{ code field message }} }}
}}"""
RESEND = f"""
mutation Resend($input: CorpEmailResendInput!) {{
  corpEmailResend(input: $input) {{
    email {{ {EMAIL_FIELDS} parent {{ id status }} }}
    errors {{ code field message }}
  }}
}}"""
CANCEL = f"""
mutation Cancel($input: CorpEmailCancelInput!) {{
  corpEmailCancel(input: $input) {{ email {{ {EMAIL_FIELDS} }} errors {{ code field message }} }}
}}"""
RULE_SAVE = """
mutation Save($input: NotifierRuleSaveInput!) {
  notifierRuleSave(input: $input) {
    rule { key currentVersion active current { version definition fromCatalog createdBy } }
    errors { code field message }
  }
}"""
TEMPLATE_SAVE = """
mutation Save($input: NotifierTemplateSaveInput!) {
  notifierTemplateSave(input: $input) {
    template { locale version subject }
    errors { code field message }
  }
}"""
PREVIEW = """
query Preview($input: NotifierPreviewInput!) {
  notifierPreview(input: $input) { rendered { subject text html } errors { code field message } }
}"""
PREFERENCE = """
mutation Pref($input: CorpPreferenceSetInput!) {
  corpPreferenceSet(input: $input) { unsubscribedNotices errors { code field message } }
}"""
CLIENT = "query C($id: String!) { corpClient(clientId: $id) { clientId unsubscribedNotices } }"
TREE = """
query Tree($id: ID!) {
  node(id: $id) { ... on CorpEmail { id status resends { id origin reason requestedBy }
    deliveryAttempts { attempt outcome backend } } }
}"""


def gid(email_id: object) -> str:
    return to_base64("CorpEmail", str(email_id))


async def _data(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str, root: str
) -> dict[str, Any]:
    body = await gql(client, query, variables, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][root]
    return result


def _errors(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def _audit(runtime: Runtime, action: str) -> list[AuditLog]:
    async with runtime.session_factory() as session:
        statement = select(AuditLog).where(AuditLog.action == action)
        return list(await session.scalars(statement))


async def test_the_history_filters_and_pages(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    first, second = await create_client(runtime), await create_client(runtime)
    await publish_and_handle(runtime, first, "LIMIT_REACHED", LIMIT)
    await publish_and_handle(
        runtime, first, "CONTRACT_ACTIVATED", {"contractType": "PREPAID", "service": "TAXI"}
    )
    await publish_and_handle(runtime, second, "LIMIT_REACHED", LIMIT)

    async def notices(where: dict[str, Any] | None, **page: Any) -> list[str]:
        found = await _data(client, HISTORY, {"filter": where, **page}, token, "corpEmails")
        return sorted(edge["node"]["notice"] for edge in found["edges"])

    assert len(await notices(None)) == 5
    assert len(await notices({"clientId": first.external_id})) == 4
    assert await notices({"clientId": second.external_id}) == ["LimitIsOverNotice"]
    assert await notices({"clientId": "nobody"}) == []
    assert await notices({"notice": "LimitIsOverNotice"}) == ["LimitIsOverNotice"] * 2
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert len(await notices({"since": later})) == 2  # the two take-a-ride reminders
    assert len(await notices({"until": later})) == 3
    assert await notices({"statuses": ["SENT"]}) == []
    page = await _data(client, HISTORY, {"first": 2}, token, "corpEmails")
    assert len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"] is True
    rest = await _data(
        client, HISTORY, {"first": 10, "after": page["pageInfo"]["endCursor"]}, token, "corpEmails"
    )
    assert len(rest["edges"]) == 3 and rest["pageInfo"]["hasNextPage"] is False


async def test_an_operator_sends_a_notice_by_hand(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime)
    data = {
        "clientId": corp.external_id,
        "notice": "ActivateClientNotice",
        "reason": "asked by phone",
    }
    payload = await _data(client, SEND, {"input": data}, token, "corpEmailSend")
    assert payload["errors"] == []
    email = payload["email"]
    assert (email["origin"], email["status"], email["reason"]) == (
        "MANUAL",
        "SCHEDULED",
        "asked by phone",
    )
    assert email["requestedBy"].startswith("user:")
    async with runtime.session_factory() as session:
        actors = [m.actor for m in await session.scalars(select(OutboxMessage))]
    assert actors == ["notifier.dispatch_due"]
    assert len(await _audit(runtime, "notifier.send")) == 1


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"notice": "NoSuchNotice"}, "UNKNOWN_NOTICE", "notice"),
        ({"clientId": "nobody"}, "UNKNOWN_CLIENT", "clientId"),
        ({"reason": " "}, "INVALID_REASON", "reason"),
        ({"idempotencyKey": ""}, "INVALID_IDEMPOTENCY_KEY", "idempotencyKey"),
    ],
)
async def test_a_bad_manual_send_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, fields: dict[str, Any], code: str, field: str
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime)
    data = {"clientId": corp.external_id, "notice": "ActivateClientNotice", "reason": "r"} | fields
    before = await row_counts(runtime)
    payload = await _data(client, SEND, {"input": data}, token, "corpEmailSend")
    assert payload["email"] is None and _errors(payload) == [(code, field)]
    assert await row_counts(runtime) == before


async def test_a_resend_is_a_new_email_linked_to_the_original(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    with SmtpServer() as smtp:
        backend = SmtpBackend.from_url(smtp.url, timeout=5, validate_certs=False)
        await dispatch(runtime, backend)
        [original] = await emails(runtime, corp)
        data = {"emailId": gid(original.id), "reason": "client lost it", "idempotencyKey": "k1"}
        first = await _data(client, RESEND, {"input": data}, token, "corpEmailResend")
        again = await _data(client, RESEND, {"input": data}, token, "corpEmailResend")
        assert first["errors"] == [] and again["email"]["id"] == first["email"]["id"]
        assert first["email"]["origin"] == "RESEND"
        assert first["email"]["parent"] == {"id": gid(original.id), "status": "SENT"}
        await dispatch(runtime, backend)
        received = await smtp.wait_for(2)
    assert [r.message["X-Engage-Notice"] for r in received] == ["LimitIsOverNotice"] * 2
    tree = await _data(client, TREE, {"id": gid(original.id)}, token, "node")
    assert [(r["origin"], r["reason"]) for r in tree["resends"]] == [("RESEND", "client lost it")]
    assert tree["deliveryAttempts"] == [{"attempt": 1, "outcome": "SENT", "backend": "smtp"}]
    changed = data | {"reason": "another reason"}
    reused = await _data(client, RESEND, {"input": changed}, token, "corpEmailResend")
    assert _errors(reused) == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert len(await _audit(runtime, "notifier.resend")) == 1


async def test_only_sent_or_failed_emails_are_resent_and_only_scheduled_ones_cancelled(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    [email] = await emails(runtime, corp)
    before = await row_counts(runtime)
    refused = await _data(
        client,
        RESEND,
        {"input": {"emailId": gid(email.id), "reason": "r"}},
        token,
        "corpEmailResend",
    )
    assert _errors(refused) == [("NOT_RESENDABLE", "emailId")]
    for bad in ("not-an-id", gid("00000000-0000-0000-0000-000000000000"), to_base64("User", "x")):
        missing = await _data(
            client, CANCEL, {"input": {"emailId": bad, "reason": "r"}}, token, "corpEmailCancel"
        )
        assert _errors(missing) == [("NOT_FOUND", "emailId")]
    assert await row_counts(runtime) == before
    cancelled = await _data(
        client, CANCEL, {"input": {"emailId": gid(email.id), "reason": "duplicate"}}, token,
        "corpEmailCancel",
    )  # fmt: skip
    assert cancelled["email"]["status"] == "CANCELLED"
    assert cancelled["email"]["cancelReason"] == "ADMIN"
    again = await _data(
        client,
        CANCEL,
        {"input": {"emailId": gid(email.id), "reason": "r"}},
        token,
        "corpEmailCancel",
    )
    assert _errors(again) == [("NOT_CANCELLABLE", "emailId")]
    assert len(await _audit(runtime, "notifier.cancel")) == 1


async def test_a_rule_edit_is_checked_then_saved_as_the_next_version(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    definition = {
        "event": "LIMIT_REACHED",
        "steps": [{"notice": "LimitIsOverNotice", "delay_minutes": 30}],
        "throttle": {"max": 2, "period_hours": 24},
    }
    late = [{"notice": "LimitIsOverNotice", "at": "25:00"}]
    bad_cases = [
        ({**definition, "steps": [{"notice": "Nope"}]}, "UNKNOWN_NOTICE", "~steps[0].notice"),
        ({**definition, "when": ["client.balance < 1"]}, "INVALID_RULE", "~when"),
        ({**definition, "event": "NOPE"}, "INVALID_RULE", "~event"),
        ({**definition, "steps": late}, "INVALID_RULE", "~steps[0].at"),
        ({**definition, "still_due": ["event.limitMinor > 0"]}, "INVALID_RULE", "~still_due"),
        ({**definition, "colour": "red"}, "INVALID_RULE", "~colour"),
        ([1, 2], "INVALID_RULE", "definition"),
    ]  # fmt: skip
    before = await row_counts(runtime)
    for bad, code, field in bad_cases:
        data = {"key": "limit-is-over", "definition": bad, "reason": "tuning"}
        payload = await _data(client, RULE_SAVE, {"input": data}, token, "notifierRuleSave")
        assert _errors(payload) == [(code, field.replace("~", "definition."))], payload
    assert await row_counts(runtime) == before
    data = {"key": "limit-is-over", "definition": definition, "reason": "tuning", "active": True}
    saved = await _data(client, RULE_SAVE, {"input": data}, token, "notifierRuleSave")
    assert saved["errors"] == []
    rule = saved["rule"]
    assert rule["currentVersion"] == 2 and rule["current"]["fromCatalog"] is None
    assert rule["current"]["definition"] == definition
    [audit] = await _audit(runtime, "notifier.rule.save")
    assert audit.target == "notifier_rule:limit-is-over@2" and audit.reason == "tuning"


async def test_a_template_with_errors_is_never_saved_and_says_where(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    data = {
        "notice": "LowBalanceNotice",
        "locale": "en",
        "subject": "Top up, {{ client.name }}",
        "text": "Hello\n{{ client.nmae }}\n",
        "html": "<p>{{ client.name }}</p>",
        "reason": "new copy",
    }
    before = await row_counts(runtime)
    refused = await _data(client, TEMPLATE_SAVE, {"input": data}, token, "notifierTemplateSave")
    [error] = refused["errors"]
    assert (error["code"], error["field"]) == ("INVALID_TEMPLATE", "text")
    assert "line 2" in error["message"]
    broken = data | {"text": "ok", "html": "<p>{% if %}</p>"}
    refused = await _data(client, TEMPLATE_SAVE, {"input": broken}, token, "notifierTemplateSave")
    assert _errors(refused) == [("INVALID_TEMPLATE", "html")]
    for field, value, code in (
        ("locale", "de", "INVALID_LOCALE"),
        ("notice", "Nope", "UNKNOWN_NOTICE"),
    ):
        bad = await _data(
            client,
            TEMPLATE_SAVE,
            {"input": data | {"text": "ok", field: value}},
            token,
            "notifierTemplateSave",
        )
        assert _errors(bad) == [(code, field)]
    assert await row_counts(runtime) == before
    good = data | {"text": "Hello {{ client.name }}"}
    saved = await _data(client, TEMPLATE_SAVE, {"input": good}, token, "notifierTemplateSave")
    assert saved == {
        "template": {"locale": "en", "version": 2, "subject": good["subject"]},
        "errors": [],
    }
    assert len(await _audit(runtime, "notifier.template.save")) == 1


async def test_a_preview_renders_for_a_client_or_sample_data_and_saves_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime, name="Acme <Cargo>", locale="en")
    before = await row_counts(runtime)
    ask = {"notice": "LowBalanceNotice", "locale": "en", "clientId": corp.external_id}
    current = await _data(client, PREVIEW, {"input": ask}, token, "notifierPreview")
    assert current["errors"] == []
    assert "Acme &lt;Cargo&gt;" in current["rendered"]["html"]
    assert "Acme <Cargo>" in current["rendered"]["text"]
    proposed = {
        "notice": "LowBalanceNotice",
        "locale": "ru",
        "subject": "Hi {{ client.name }}",
        "text": "{{ client.balance_minor | money(client.currency) }}",
        "html": "<p></p>",
    }
    sample = await _data(client, PREVIEW, {"input": proposed}, token, "notifierPreview")
    assert sample["errors"] == [] and sample["rendered"]["subject"].startswith("Hi ")
    broken = proposed | {"text": "{{ nope }}"}
    failed = await _data(client, PREVIEW, {"input": broken}, token, "notifierPreview")
    assert _errors(failed) == [("INVALID_TEMPLATE", "text")]
    partial = {"notice": "LowBalanceNotice", "locale": "ru", "subject": "x"}
    failed = await _data(client, PREVIEW, {"input": partial}, token, "notifierPreview")
    assert _errors(failed) == [("INVALID_TEMPLATE", "subject")]
    assert await row_counts(runtime) == before


async def test_preferences_refuse_critical_notices(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime)
    base = {"clientId": corp.external_id, "unsubscribed": True}
    before = await row_counts(runtime)
    for notice, code in (("LowBalanceNotice", "CRITICAL_NOTICE"), ("Nope", "UNKNOWN_NOTICE")):
        refused = await _data(
            client, PREFERENCE, {"input": base | {"notice": notice}}, token, "corpPreferenceSet"
        )
        assert _errors(refused) == [(code, "notice")]
    assert await row_counts(runtime) == before
    done = await _data(
        client,
        PREFERENCE,
        {"input": base | {"notice": "ActivateClientNotice"}},
        token,
        "corpPreferenceSet",
    )
    assert done == {"unsubscribedNotices": ["ActivateClientNotice"], "errors": []}
    seen = await _data(client, CLIENT, {"id": corp.external_id}, token, "corpClient")
    assert seen == {"clientId": corp.external_id, "unsubscribedNotices": ["ActivateClientNotice"]}
    assert await _data(client, CLIENT, {"id": "nobody"}, token, "corpClient") is None
    back = base | {"notice": "ActivateClientNotice", "unsubscribed": False}
    done = await _data(client, PREFERENCE, {"input": back}, token, "corpPreferenceSet")
    assert done == {"unsubscribedNotices": [], "errors": []}
    assert len(await _audit(runtime, "notifier.unsubscribe")) == 1
    assert len(await _audit(runtime, "notifier.subscribe")) == 1


async def test_a_failed_email_can_be_sent_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await load_catalog(runtime)
    token = await admin_token(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    async with runtime.session_factory() as session, session.begin():
        [row] = (await session.scalars(select(QueuedEmail))).all()
        row.status, row.last_error = EmailStatus.FAILED, "550 no such user"
    data = {"emailId": gid(row.id), "reason": "address fixed"}
    payload = await _data(client, RESEND, {"input": data}, token, "corpEmailResend")
    assert payload["errors"] == [] and payload["email"]["parent"]["status"] == "FAILED"
