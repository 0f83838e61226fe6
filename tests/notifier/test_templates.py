"""The notifier's templates (app/services/notifier/templates.py) and the shipped catalog
(app/services/notifier/notices.toml): no database, no mail."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app.services.notifier.templates import (
    MAX_PART_CHARS,
    MAX_SUBJECT_SOURCE_CHARS,
    Rendered,
    TemplateProblem,
    TemplateRenderError,
    TemplateSource,
    check,
    format_money,
    render,
    sample_context,
    template_context,
)

CATALOG_PATH = Path(__file__).parents[2] / "app" / "services" / "notifier" / "notices.toml"
CATALOG: dict[str, Any] = tomllib.loads(CATALOG_PATH.read_text(encoding="utf-8"))
NOTICES: dict[str, Any] = CATALOG["notices"]
RULES: dict[str, Any] = CATALOG["rules"]

NOTICE_NAMES = {
    "FirstRemindPrepaidNotice",
    "SecondRemindPrepaidNotice",
    "ThirdRemindPrepaidNotice",
    "ThirdRemindOfferNotice",
    "PrepaidFirstTakeARideNotice",
    "PrepaidSecondTakeARideNotice",
    "PostpaidFirstTakeARideNotice",
    "PostpaidSecondTakeARideNotice",
    "ActivateClientNotice",
    "CargoActivateClientNotice",
    "LimitIsOverNotice",
    "FinancialUnblockNotice",
    "LowBalanceNotice",
}
CRITICAL = {"LimitIsOverNotice", "FinancialUnblockNotice", "LowBalanceNotice"}
TEMPLATES = [
    (name, locale, parts)
    for name, notice in NOTICES.items()
    for locale, parts in notice["templates"].items()
]

# What each rule sends, and when: (event, when, [(notice, days, at)]).
EXPECTED_RULES: dict[str, tuple[str, list[str], list[tuple[str, int | None, str | None]]]] = {
    "prepaid-offer-reminders": (
        "CLIENT_CREATED_BY_OFFER",
        ["event.contractType == 'PREPAID'"],
        [
            ("FirstRemindPrepaidNotice", 1, "10:00"),
            ("SecondRemindPrepaidNotice", 3, "10:00"),
            ("ThirdRemindPrepaidNotice", 7, "10:00"),
        ],
    ),
    "postpaid-offer-reminder": (
        "CLIENT_CREATED_BY_OFFER",
        ["event.contractType == 'POSTPAID'"],
        [("ThirdRemindOfferNotice", 7, "10:00")],
    ),
    "activate-client": (
        "CONTRACT_ACTIVATED",
        ["event.service == 'TAXI'"],
        [("ActivateClientNotice", None, None)],
    ),
    "activate-cargo-client": (
        "CONTRACT_ACTIVATED",
        ["event.service == 'CARGO'"],
        [("CargoActivateClientNotice", None, None)],
    ),
    "prepaid-take-a-ride": (
        "CONTRACT_ACTIVATED",
        ["event.contractType == 'PREPAID'", "event.service == 'TAXI'"],
        [("PrepaidFirstTakeARideNotice", 3, "11:00"), ("PrepaidSecondTakeARideNotice", 7, "11:00")],
    ),
    "postpaid-take-a-ride": (
        "CONTRACT_ACTIVATED",
        ["event.contractType == 'POSTPAID'", "event.service == 'TAXI'"],
        [
            ("PostpaidFirstTakeARideNotice", 3, "11:00"),
            ("PostpaidSecondTakeARideNotice", 7, "11:00"),
        ],
    ),
    "limit-is-over": ("LIMIT_REACHED", [], [("LimitIsOverNotice", None, None)]),
    "financial-unblock": ("FINANCIAL_UNBLOCK", [], [("FinancialUnblockNotice", None, None)]),
    "low-balance": (
        "BALANCE_CHANGED",
        [
            "client.contractType == 'PREPAID'",
            "event.balanceMinor < client.lowBalanceThresholdMinor",
        ],
        [("LowBalanceNotice", None, None)],
    ),
}

CLIENT_PATH_FIELDS = {
    "externalId",
    "name",
    "contractType",
    "balanceMinor",
    "currency",
    "lowBalanceThresholdMinor",
    "locale",
    "timezone",
    "activatedAt",
    "firstRideAt",
    "lastPaymentAt",
    "limitReachedAt",
}
EVENT_FIELDS = {
    "CLIENT_CREATED_BY_OFFER": {"contractType", "offerId"},
    "CONTRACT_ACTIVATED": {"contractType", "service"},
    "BALANCE_CHANGED": {"balanceMinor", "currency"},
    "LIMIT_REACHED": {"limitMinor", "currency"},
    "FINANCIAL_UNBLOCK": {"balanceMinor", "currency"},
    "RIDE_TAKEN": {"orderId", "takenAt"},
    "PAYMENT_RECEIVED": {"amountMinor", "currency", "balanceMinor"},
}
RULE_KEYS = {
    "description",
    "event",
    "when",
    "still_due",
    "expires_after_hours",
    "throttle",
    "cancel_on",
    "steps",
}
STEP_KEYS = {"notice", "days", "at", "delay_minutes"}

_OPERAND = r"(?:[a-z]+\.[A-Za-z]+|-?\d+|'[^']*'|true|false)"
_COMPARISON = re.compile(rf"^({_OPERAND}) (==|!=|<=|>=|<|>) ({_OPERAND})$")
_NULL_TEST = re.compile(r"^([a-z]+\.[A-Za-z]+) is (?:not )?null$")
_PATH = re.compile(r"^(client|event)\.([A-Za-z]+)$")

EVIL_NAME = '<b>"Acme" & Co</b>'
ESCAPED_NAME = "&lt;b&gt;&#34;Acme&#34; &amp; Co&lt;/b&gt;"
NBSP = "\u00a0"


def context(locale: str = "en", **client: Any) -> dict[str, Any]:
    values = sample_context(locale)
    values["client"].update(client)
    return values


def source(
    subject: str = "Subject", text: str = "Text", html: str = "<p>Html</p>"
) -> TemplateSource:
    return TemplateSource(subject=subject, text=text, html=html)


def problems_of(template: TemplateSource, locale: str = "en") -> list[TemplateProblem]:
    problems = check(template, locale)
    with pytest.raises(TemplateRenderError) as raised:
        render(template, sample_context(locale))
    assert list(raised.value.problems) == problems
    return problems


def only_problem(template: TemplateSource) -> TemplateProblem:
    problems = problems_of(template)
    assert len(problems) == 1, problems
    return problems[0]


# --- the catalog -------------------------------------------------------------------------------


def test_the_catalog_has_a_version_and_exactly_the_thirteen_notices() -> None:
    assert isinstance(CATALOG["version"], int)
    assert CATALOG["version"] >= 1
    assert set(NOTICES) == NOTICE_NAMES
    assert set(CATALOG) == {"version", "notices", "rules"}


@pytest.mark.parametrize("name", sorted(NOTICE_NAMES))
def test_every_notice_has_a_description_a_criticality_and_ru_and_en(name: str) -> None:
    notice = NOTICES[name]
    assert set(notice) == {"critical", "description", "templates"}
    assert notice["critical"] is (name in CRITICAL)
    assert notice["description"].strip()
    assert "\n" not in notice["description"]
    assert set(notice["templates"]) == {"ru", "en"}
    for parts in notice["templates"].values():
        assert set(parts) == {"subject", "text", "html"}


@pytest.mark.parametrize(("name", "locale", "parts"), TEMPLATES)
def test_every_shipped_template_passes_check_in_its_locale(
    name: str, locale: str, parts: dict[str, str]
) -> None:
    assert check(TemplateSource(**parts), locale) == []


@pytest.mark.parametrize(("name", "locale", "parts"), TEMPLATES)
@pytest.mark.parametrize("contract_type", ["PREPAID", "POSTPAID"])
def test_every_shipped_template_renders_for_both_contract_types_and_escapes_the_name(
    name: str, locale: str, parts: dict[str, str], contract_type: str
) -> None:
    values = context(locale, contract_type=contract_type, name=EVIL_NAME, currency="JPY")
    rendered = render(TemplateSource(**parts), values)
    assert EVIL_NAME not in rendered.html
    assert ESCAPED_NAME in rendered.html
    assert EVIL_NAME in rendered.text
    assert 'href="https://corp.example.com"' in rendered.html
    assert "https://corp.example.com" in rendered.text
    assert "\n\n\n" not in rendered.text  # no blank lines left by block tags


@pytest.mark.parametrize(("name", "locale", "parts"), TEMPLATES)
def test_shipped_templates_use_no_event_field(
    name: str, locale: str, parts: dict[str, str]
) -> None:
    # A notice sent by hand has no event: the catalog's templates speak of the client only.
    assert not any("event." in part or "event[" in part for part in parts.values())


def test_the_catalog_has_exactly_the_rules_and_each_sends_what_and_when_it_should() -> None:
    assert set(RULES) == set(EXPECTED_RULES)
    for name, (event, when, steps) in EXPECTED_RULES.items():
        rule = RULES[name]
        assert rule["event"] == event, name
        assert rule.get("when", []) == when, name
        actual = [(step["notice"], step.get("days"), step.get("at")) for step in rule["steps"]]
        assert actual == steps, name


def test_every_rule_names_existing_notices_and_every_notice_is_sent_by_a_rule() -> None:
    sent = {step["notice"] for rule in RULES.values() for step in rule["steps"]}
    assert sent == NOTICE_NAMES


def test_the_rules_cancellations_expiries_and_throttles() -> None:
    assert RULES["prepaid-offer-reminders"]["still_due"] == [
        "client.activatedAt is null",
        "client.lastPaymentAt is null",
    ]
    assert [c["event"] for c in RULES["prepaid-offer-reminders"]["cancel_on"]] == [
        "PAYMENT_RECEIVED",
        "CONTRACT_ACTIVATED",
    ]
    assert RULES["postpaid-offer-reminder"]["still_due"] == ["client.activatedAt is null"]
    assert RULES["postpaid-offer-reminder"]["cancel_on"] == [{"event": "CONTRACT_ACTIVATED"}]
    for name in ("prepaid-take-a-ride", "postpaid-take-a-ride"):
        assert RULES[name]["still_due"] == ["client.firstRideAt is null"]
        assert RULES[name]["cancel_on"] == [{"event": "RIDE_TAKEN"}]
    for name in ("limit-is-over", "low-balance"):
        assert RULES[name]["throttle"] == {"max": 1, "period_hours": 24}
    assert RULES["low-balance"]["cancel_on"] == [
        {"event": "PAYMENT_RECEIVED"},
        {
            "event": "BALANCE_CHANGED",
            "when": ["event.balanceMinor >= client.lowBalanceThresholdMinor"],
        },
    ]
    expiring = {name for name, rule in RULES.items() if "expires_after_hours" in rule}
    assert expiring == set(EXPECTED_RULES) - {
        "activate-client",
        "activate-cargo-client",
        "financial-unblock",
    }
    assert all(RULES[name]["expires_after_hours"] == 24 for name in expiring)


def _condition_problems(condition: str, event: str) -> list[str]:
    if (null_test := _NULL_TEST.match(condition)) is not None:
        operands = [null_test.group(1)]
    elif (comparison := _COMPARISON.match(condition)) is not None:
        operands = [comparison.group(1), comparison.group(3)]
    else:
        return [f"{condition!r} is not a condition"]
    problems = []
    for operand in operands:
        path = _PATH.match(operand)
        if path is None:
            continue
        fields = CLIENT_PATH_FIELDS if path.group(1) == "client" else EVENT_FIELDS[event]
        if path.group(2) not in fields:
            problems.append(f"{condition!r}: {operand} does not exist for {event}")
    return problems


def _rule_conditions(rule: dict[str, Any]) -> list[tuple[str, str]]:
    conditions = [(c, rule["event"]) for c in rule.get("when", []) + rule.get("still_due", [])]
    for cancel in rule.get("cancel_on", []):
        conditions += [(c, cancel["event"]) for c in cancel.get("when", [])]
    return conditions


@pytest.mark.parametrize("name", sorted(EXPECTED_RULES))
def test_every_rule_is_well_formed(name: str) -> None:
    rule = RULES[name]
    assert set(rule) <= RULE_KEYS
    assert rule["description"].strip()
    assert rule["event"] in EVENT_FIELDS
    for cancel in rule.get("cancel_on", []):
        assert set(cancel) <= {"event", "when"}
        assert cancel["event"] in EVENT_FIELDS
    for step in rule["steps"]:
        assert set(step) <= STEP_KEYS
        assert isinstance(step.get("days", 0), int)
        assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", step.get("at", "00:00"))
    problems = [p for c, event in _rule_conditions(rule) for p in _condition_problems(c, event)]
    assert problems == []


# --- rendering and escaping --------------------------------------------------------------------


def test_render_gives_the_three_parts_with_the_subject_stripped() -> None:
    rendered = render(
        source(
            subject="  Hello {{ client.name }}  \n",
            text="Hi {{ notice }}",
            html="<p>{{ locale }}</p>",
        ),
        context("en", name="Acme"),
    )
    assert rendered == Rendered(subject="Hello Acme", text="Hi LowBalanceNotice", html="<p>en</p>")


def test_html_is_escaped_and_the_subject_and_text_are_not() -> None:
    template = source("{{ client.name }}", "{{ client.name }}", "<p>{{ client.name }}</p>")
    rendered = render(template, context(name=EVIL_NAME))
    assert rendered.subject == EVIL_NAME
    assert rendered.text == EVIL_NAME
    assert rendered.html == f"<p>{ESCAPED_NAME}</p>"


def test_block_tags_leave_no_blank_lines() -> None:
    text = "A\n{% if client.contract_type == 'PREPAID' %}\nyes\n{% else %}\nno\n{% endif %}\nB"
    assert render(source(text=text), context()).text == "A\nyes\nB"


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (123_450, "RUB", "ru", f"1{NBSP}234,50{NBSP}RUB"),
        (123_450, "RUB", "en", f"1,234.50{NBSP}RUB"),
        (123_456_789_012, "USD", "ru", f"1{NBSP}234{NBSP}567{NBSP}890,12{NBSP}USD"),
        (123_456_789_012, "USD", "en", f"1,234,567,890.12{NBSP}USD"),
        (0, "EUR", "en", f"0.00{NBSP}EUR"),
        (5, "EUR", "ru", f"0,05{NBSP}EUR"),
        (99_900, "RUB", "ru", f"999,00{NBSP}RUB"),
        (1234, "JPY", "en", f"1,234{NBSP}JPY"),
        (1234, "KRW", "ru", f"1{NBSP}234{NBSP}KRW"),
        (1_234_567, "KWD", "en", f"1,234.567{NBSP}KWD"),
        (1_005, "BHD", "ru", f"1,005{NBSP}BHD"),
        (-123_450, "RUB", "ru", f"-1{NBSP}234,50{NBSP}RUB"),
        (-5, "USD", "en", f"-0.05{NBSP}USD"),
        (-1234, "JPY", "en", f"-1,234{NBSP}JPY"),
        (-1, "OMR", "en", f"-0.001{NBSP}OMR"),
    ],
)
def test_money_formats_minor_units_by_locale_and_currency(
    amount: int, currency: str, locale: str, expected: str
) -> None:
    assert format_money(amount, currency, locale) == expected
    template = source(text=f"{{{{ {amount} | money('{currency}') }}}}")
    assert render(template, context(locale)).text == expected


def test_the_money_filter_reads_the_client_fields_and_the_context_locale() -> None:
    template = source(text="{{ client.balance_minor | money(client.currency) }}")
    assert render(template, context("ru", balance_minor=-100, currency="RUB")).text == (
        f"-1,00{NBSP}RUB"
    )
    assert render(template, context("en", balance_minor=-100, currency="RUB")).text == (
        f"-1.00{NBSP}RUB"
    )


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("12.5 | money('RUB')", "int amount"),
        ("true | money('RUB')", "int amount"),
        ("'100' | money('RUB')", "int amount"),
        ("100 | money('rub')", "currency"),
        ("100 | money('RUBLE')", "currency"),
        ("100 | money(643)", "currency"),
    ],
)
def test_bad_money_is_a_problem_on_its_line(expression: str, fragment: str) -> None:
    problem = only_problem(source(text=f"line one\n{{{{ {expression} }}}}"))
    assert (problem.part, problem.line) == ("text", 2)
    assert fragment in problem.message


def test_money_refuses_an_unknown_locale() -> None:
    with pytest.raises(ValueError, match="locale"):
        format_money(100, "RUB", "de")


# --- problems ----------------------------------------------------------------------------------


def test_a_misspelt_variable_is_a_problem_naming_the_part_and_line() -> None:
    problem = only_problem(source(html="<p>\n{{ client.nmae }}\n</p>"))
    assert (problem.part, problem.line) == ("html", 2)
    assert "nmae" in problem.message


def test_an_unknown_top_level_name_is_a_problem() -> None:
    problem = only_problem(source(subject="Hi {{ company }}"))
    assert (problem.part, problem.line) == ("subject", 1)
    assert "company" in problem.message


def test_an_event_field_is_a_problem_against_the_sample_context() -> None:
    # The sample event is empty, as when an admin sends a notice by hand.
    problem = only_problem(source(text="{{ event.balanceMinor | money(client.currency) }}"))
    assert (problem.part, problem.line) == ("text", 1)
    assert "balanceMinor" in problem.message


def test_a_client_field_outside_the_contract_is_a_problem() -> None:
    problem = only_problem(source(text="{{ client.timezone }}"))
    assert "timezone" in problem.message


def test_a_syntax_error_reports_the_line_jinja_reports() -> None:
    problem = only_problem(source(text="Hello\n{{ client.name }\nBye"))
    assert (problem.part, problem.line) == ("text", 2)
    assert problem.message.startswith("syntax error")


def test_an_unclosed_block_is_a_syntax_error() -> None:
    problem = only_problem(source(html="<p>\n{% if client.name %}\nyes\n"))
    assert problem.part == "html"
    assert problem.message.startswith("syntax error")


def test_a_runtime_error_reports_its_template_line() -> None:
    text = "line one\n{% for i in [1, 2] %}\n{{ client.balance_minor // (i - 1) }}\n{% endfor %}"
    problem = only_problem(source(text=text))
    assert (problem.part, problem.line) == ("text", 3)
    assert "division" in problem.message


def test_a_runtime_error_in_a_filter_reports_its_template_line() -> None:
    problem = only_problem(source(html="<p>\n</p>\n{{ client.name | money(client.currency) }}"))
    assert (problem.part, problem.line) == ("html", 3)


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "''.__class__",
        "client.__class__.__init__.__globals__",
        "cycler.__init__.__globals__",
        "range.__self__",
        "client.update({'name': 'x'})",
        "client.pop('name')",
        "[].append(1)",
        "'x' * 1000000000",
        "2 ** 100000000",
        "(10 ** 1000) ** 1000",
        "[1, 2] * 100000",
    ],
)
def test_the_sandbox_refuses_unsafe_expressions(expression: str) -> None:
    problem = only_problem(source(text=f"{{{{ {expression} }}}}"))
    assert (problem.part, problem.line) == ("text", 1)


def test_a_sandbox_refusal_is_never_rendered() -> None:
    with pytest.raises(TemplateRenderError) as raised:
        render(source(html="{{ ''.__class__.__mro__ }}"), sample_context("ru"))
    assert [problem.part for problem in raised.value.problems] == ["html"]
    assert "html" in str(raised.value)


def test_the_context_cannot_be_mutated_by_a_template() -> None:
    values = context(name="Acme")
    with pytest.raises(TemplateRenderError):
        render(source(text="{% set _ = client.update({'name': 'Evil'}) %}"), values)
    assert values["client"]["name"] == "Acme"


@pytest.mark.parametrize("subject", ["Line one\nLine two", "{{ 'a' ~ '\\n' ~ 'b' }}", "One\rTwo"])
def test_a_subject_rendering_to_two_lines_is_a_problem(subject: str) -> None:
    problem = only_problem(source(subject=subject))
    assert (problem.part, problem.line) == ("subject", None)
    assert "one line" in problem.message


def test_a_client_name_cannot_inject_a_header_through_the_subject() -> None:
    with pytest.raises(TemplateRenderError) as raised:
        render(source(subject="{{ client.name }}"), context(name="Acme\nBcc: victim@example.com"))
    assert [(p.part, p.line) for p in raised.value.problems] == [("subject", None)]


@pytest.mark.parametrize("subject", ["", "   ", "{{ '' }}", "\n{% if false %}x{% endif %}\n"])
def test_an_empty_subject_is_a_problem(subject: str) -> None:
    problem = only_problem(source(subject=subject))
    assert (problem.part, problem.message) == ("subject", "the subject renders empty")


def test_every_part_is_checked_and_all_problems_are_reported() -> None:
    problems = problems_of(source(subject="", text="{{ nope }}", html="{% if %}"))
    assert [problem.part for problem in problems] == ["subject", "text", "html"]


def test_size_limits() -> None:
    assert check(source(subject="s" * MAX_SUBJECT_SOURCE_CHARS), "en") == []
    assert check(source(text="t" * MAX_PART_CHARS, html="h" * MAX_PART_CHARS), "en") == []
    problems = problems_of(
        source(
            subject="s" * (MAX_SUBJECT_SOURCE_CHARS + 1),
            text="t" * (MAX_PART_CHARS + 1),
            html="h" * (MAX_PART_CHARS + 1),
        )
    )
    assert [(p.part, p.line) for p in problems] == [
        ("subject", None),
        ("text", None),
        ("html", None),
    ]
    assert all("characters" in p.message for p in problems)


# --- contexts ----------------------------------------------------------------------------------


def _client(**overrides: Any) -> dict[str, Any]:
    client = {
        "external_id": "c-1",
        "name": "Acme",
        "contract_type": "POSTPAID",
        "balance_minor": -5_000,
        "low_balance_threshold_minor": 0,
        "currency": "EUR",
        "locale": "en",
    }
    return client | overrides


def test_template_context_keeps_only_the_contract() -> None:
    values = template_context(
        client=_client(timezone="Europe/Berlin", password_hash="x"),
        event={"balanceMinor": 1},
        cabinet_url="https://cabinet.example",
        notice="LowBalanceNotice",
        locale="en",
    )
    assert values == {
        "client": _client(),
        "event": {"balanceMinor": 1},
        "cabinet_url": "https://cabinet.example",
        "notice": "LowBalanceNotice",
        "locale": "en",
    }


def test_template_context_refuses_a_client_missing_a_field_or_a_bad_locale() -> None:
    client = _client()
    del client["currency"]
    with pytest.raises(ValueError, match="currency"):
        template_context(client=client, event={}, cabinet_url="u", notice="n", locale="en")
    with pytest.raises(ValueError, match="locale"):
        template_context(client=_client(), event={}, cabinet_url="u", notice="n", locale="de")
    with pytest.raises(ValueError, match="locale"):
        sample_context("fr")


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_the_sample_context_is_a_realistic_client_with_an_empty_event(locale: str) -> None:
    values = sample_context(locale)
    assert values["locale"] == locale
    assert values["client"]["locale"] == locale
    assert values["event"] == {}
    assert isinstance(values["client"]["balance_minor"], int)
    assert values["client"]["balance_minor"] < values["client"]["low_balance_threshold_minor"]
