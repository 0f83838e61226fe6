"""The notifier's email templates: Jinja2 sources rendered into a subject, a text and an HTML part.

Decisions:
- Admins edit templates, so they run in `ImmutableSandboxedEnvironment`: no access to dunder
  attributes or internals, no mutation of the context's dicts and lists. The sandbox also
  refuses `*` and `**` whose result would be huge (`'x' * 10**9`, `(10**1000)**1000`), the
  cheap one-expression memory bombs; it does not bound CPU time (nested loops).
- `StrictUndefined`: a misspelt variable (`client.nmae`) is an error, never an empty string.
- Autoescape is on for the HTML part only; the subject and the text part are plain text.
- Every failure (syntax, undefined name, sandbox refusal, a type error in a filter...) becomes
  a `TemplateProblem` naming the part and, when known, the template line; `render` raises them
  together in one `TemplateRenderError`, `check` returns them.
- The subject is stripped and must be one non-empty line (a newline would be a header
  injection).
- The context is exactly `template_context`'s keys. `event` may be empty (an admin can send a
  notice by hand), and `sample_context` has an empty event on purpose, so `check` rejects a
  template that needs an event field.
- `money` formats integer minor units with the context's `locale`: "ru" → `1 234,50 RUB`,
  "en" → `1,234.50 RUB`; negative amounts start with "-" (U+002D). Every space in the result
  (the Russian thousands separator and the one before the currency code in both locales) is
  a NO-BREAK SPACE U+00A0, not the narrow U+202F that CLDR prefers: U+00A0 renders in every
  mail client and font, and an amount never wraps away from its currency. Currencies without
  minor units (JPY, KRW, CLP...) and with three decimals (KWD, BHD, JOD, OMR, TND...) come from
  a small table; every other currency has two.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

PARTS = ("subject", "text", "html")
LOCALES = ("ru", "en")
MAX_PART_CHARS = 100_000
MAX_SUBJECT_SOURCE_CHARS = 500
CLIENT_FIELDS = (
    "external_id",
    "name",
    "contract_type",
    "balance_minor",
    "low_balance_threshold_minor",
    "currency",
    "locale",
)

# The largest `'x' * n` (in items) and integer `a ** b` (in bits) the sandbox computes.
_MAX_SEQUENCE_PRODUCT = 100_000
_MAX_POWER_BITS = 100_000

NBSP = "\u00a0"


@dataclass(frozen=True, slots=True)
class TemplateSource:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    part: str  # "subject" | "text" | "html"
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.part if self.line is None else f"{self.part}, line {self.line}"
        return f"{where}: {self.message}"


class TemplateRenderError(Exception):
    """One or more problems of a template; `problems` lists them all, in part order."""

    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        self.problems: tuple[TemplateProblem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


# --- money -------------------------------------------------------------------------------------

# ISO 4217 currencies whose minor unit is not 1/100.
# fmt: off
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
# fmt: on


class _NumberStyle(NamedTuple):
    group: str
    decimal: str


_STYLES: dict[str, _NumberStyle] = {
    "ru": _NumberStyle(group=NBSP, decimal=","),
    "en": _NumberStyle(group=",", decimal="."),
}


def currency_exponent(currency: str) -> int:
    """The number of decimals of `currency`'s minor unit (2 unless the table says otherwise)."""
    return _EXPONENTS.get(currency, 2)


def _is_currency_code(currency: object) -> bool:
    return (
        isinstance(currency, str)
        and len(currency) == 3
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper()
    )


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """`amount_minor` minor units of `currency` as text for `locale` (see the module docstring)."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise TypeError(f"money needs an int amount in minor units, got {amount_minor!r}")
    if not _is_currency_code(currency):
        raise ValueError(f"money needs an ISO 4217 currency code, got {currency!r}")
    style = _STYLES.get(locale)
    if style is None:
        raise ValueError(f"money has no format for the locale {locale!r}")
    exponent = currency_exponent(currency)
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    number = f"{whole:,}".replace(",", style.group)
    if exponent:
        number += f"{style.decimal}{fraction:0{exponent}d}"
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{number}{NBSP}{currency}"


@pass_context
def _money_filter(context: Context, amount_minor: int, currency: str) -> str:
    for value in (amount_minor, currency):
        if isinstance(value, Undefined):
            # StrictUndefined raises, naming the missing variable, instead of "got Undefined".
            str(value)
    return format_money(amount_minor, currency, context.get("locale"))


# --- environments ------------------------------------------------------------------------------


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _power_bits(left, right) > _MAX_POWER_BITS:
            raise SecurityError("the power would be too large")
        if operator == "*" and _product_size(left, right) > _MAX_SEQUENCE_PRODUCT:
            raise SecurityError("the repeated sequence would be too long")
        return super().call_binop(context, operator, left, right)


def _power_bits(base: Any, exponent: Any) -> int:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        return base.bit_length() * exponent
    return 0


def _product_size(left: Any, right: Any) -> int:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            return len(sequence) * count
    return 0


def _environment(*, autoescape: bool) -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = _money_filter
    return env


_PLAIN = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def _filename(part: str) -> str:
    # The name jinja gives the template's frames in a traceback (see `_runtime_line`).
    return f"<notifier {part} template>"


@functools.lru_cache(maxsize=1024)
def _compile(part: str, source: str) -> Template:
    env = _HTML if part == "html" else _PLAIN
    code = env.compile(source, name=part, filename=_filename(part))
    return env.template_class.from_code(env, code, env.make_globals(None))


# --- rendering ---------------------------------------------------------------------------------


def _runtime_line(part: str, traceback: TracebackType | None) -> int | None:
    # jinja rewrites the traceback of a render so the template's frames carry the template's
    # file name and line; the innermost such frame is where the error happened.
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == _filename(part):
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _render_part(part: str, source: str, context: Mapping[str, Any]) -> str | TemplateProblem:
    try:
        template = _compile(part, source)
    except TemplateSyntaxError as exc:
        return TemplateProblem(part, exc.lineno, f"syntax error: {exc.message}")
    try:
        return template.render(context)
    # The template is an admin's code: whatever it raises is a problem of that template, and
    # must never escape as an arbitrary exception into the dispatcher or the admin API.
    except Exception as exc:  # noqa: BLE001
        return TemplateProblem(part, _runtime_line(part, exc.__traceback__), _describe(exc))


def _describe(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, SecurityError):
        return f"not allowed: {message}"
    return message


def _size_problems(source: TemplateSource) -> list[TemplateProblem]:
    problems = []
    if len(source.subject) > MAX_SUBJECT_SOURCE_CHARS:
        problems.append(_too_long("subject", len(source.subject), MAX_SUBJECT_SOURCE_CHARS))
    for part in ("text", "html"):
        size = len(getattr(source, part))
        if size > MAX_PART_CHARS:
            problems.append(_too_long(part, size, MAX_PART_CHARS))
    return problems


def _too_long(part: str, size: int, limit: int) -> TemplateProblem:
    return TemplateProblem(part, None, f"the template has {size} characters, at most {limit}")


def _subject_problem(subject: str) -> TemplateProblem | None:
    if not subject:
        return TemplateProblem("subject", None, "the subject renders empty")
    if "\n" in subject or "\r" in subject:
        return TemplateProblem("subject", None, "the subject must render to one line")
    return None


def render(source: TemplateSource, context: Mapping[str, Any]) -> Rendered:
    """Render the three parts; raise `TemplateRenderError` with every problem found."""
    problems = _size_problems(source)
    if problems:
        raise TemplateRenderError(problems)
    outputs: dict[str, str] = {}
    for part in PARTS:
        result = _render_part(part, getattr(source, part), context)
        if isinstance(result, TemplateProblem):
            problems.append(result)
        else:
            outputs[part] = result
    if "subject" in outputs:
        outputs["subject"] = outputs["subject"].strip()
        subject_problem = _subject_problem(outputs["subject"])
        if subject_problem is not None:
            problems.insert(0, subject_problem)
    if problems:
        raise TemplateRenderError(problems)
    return Rendered(**outputs)


def check(source: TemplateSource, locale: str) -> list[TemplateProblem]:
    """The problems of `source` (syntax, size, rendering against `sample_context`); [] if fine."""
    try:
        render(source, sample_context(locale))
    except TemplateRenderError as exc:
        return list(exc.problems)
    return []


# --- contexts ----------------------------------------------------------------------------------


def _require_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise ValueError(f"the locale must be one of {', '.join(LOCALES)}, got {locale!r}")


def template_context(
    *,
    client: Mapping[str, Any],
    event: Mapping[str, Any],
    cabinet_url: str,
    notice: str,
    locale: str,
) -> dict[str, Any]:
    """The variables a template sees, and nothing else (extra client keys are dropped).

    Raises ValueError for an unsupported locale or a client missing a contract field.
    """
    _require_locale(locale)
    missing = [field for field in CLIENT_FIELDS if field not in client]
    if missing:
        raise ValueError(f"the client has no {', '.join(missing)}")
    return {
        "client": {field: client[field] for field in CLIENT_FIELDS},
        "event": dict(event),
        "cabinet_url": cabinet_url,
        "notice": notice,
        "locale": locale,
    }


_SAMPLE_NAMES = {"ru": "ООО «Ромашка»", "en": "Acme Logistics Ltd"}  # noqa: RUF001


def sample_context(locale: str) -> dict[str, Any]:
    """A realistic prepaid client for previews and `check`; its event is empty on purpose."""
    _require_locale(locale)
    client = {
        "external_id": "corp-000123",
        "name": _SAMPLE_NAMES[locale],
        "contract_type": "PREPAID",
        "balance_minor": 1_234_550,
        "low_balance_threshold_minor": 2_000_000,
        "currency": "RUB",
        "locale": locale,
    }
    return template_context(
        client=client,
        event={},
        cabinet_url="https://corp.example.com",
        notice="LowBalanceNotice",
        locale=locale,
    )


__all__ = [
    "CLIENT_FIELDS",
    "LOCALES",
    "MAX_PART_CHARS",
    "MAX_SUBJECT_SOURCE_CHARS",
    "PARTS",
    "Rendered",
    "TemplateProblem",
    "TemplateRenderError",
    "TemplateSource",
    "check",
    "currency_exponent",
    "format_money",
    "render",
    "sample_context",
    "template_context",
]
