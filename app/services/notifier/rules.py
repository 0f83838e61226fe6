"""A rule's definition, read and checked (pure): the catalog file's shape and the admin's.

    event = "BALANCE_CHANGED"                    # the event type that triggers it
    when = ["event.balanceMinor < client.lowBalanceThresholdMinor"]   # all must hold
    steps = [{ notice = "LowBalanceNotice", days = 1, at = "10:00", delay_minutes = 0 }]
    still_due = ["client.balanceMinor < client.lowBalanceThresholdMinor"]  # at send time
    cancel_on = [{ event = "PAYMENT_RECEIVED", when = [...] }]  # withdraws pending emails
    expires_after_hours = 24                     # past send_at + this: CANCELLED, EXPIRED
    throttle = { max = 1, period_hours = 24 }    # per client and notice

Everything is checked when a rule is loaded or edited, and the error names the field
(`steps[1].at`), so nothing unknown is found at send time. A stored version is immutable, so
the parsed rule is cached per version id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.models.notifier import CorpEventType
from app.services.notifier import conditions, timing
from app.services.notifier.conditions import Condition, ConditionError
from app.services.notifier.events import fields_of

MAX_STEPS = 10
MAX_CONDITIONS = 10
_RULE_KEYS = frozenset(
    {"description", "event", "when", "steps", "still_due", "cancel_on", "expires_after_hours",
     "throttle"}
)  # fmt: skip
_STEP_KEYS = frozenset({"notice", "days", "at", "delay_minutes"})


class RuleError(ValueError):
    """A bad definition; `field` is the path of the offending entry, `unknown_notice` tells
    a step naming a notice that doesn't exist apart from other mistakes."""

    def __init__(self, field: str, message: str, *, unknown_notice: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.unknown_notice = unknown_notice


@dataclass(frozen=True, slots=True)
class Step:
    notice: str
    timing: timing.Timing


@dataclass(frozen=True, slots=True)
class CancelOn:
    event: CorpEventType
    when: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Throttle:
    max: int
    period: timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    event: CorpEventType
    description: str
    when: tuple[Condition, ...]
    steps: tuple[Step, ...]
    still_due: tuple[Condition, ...]
    cancel_on: tuple[CancelOn, ...]
    expires_after: timedelta | None
    throttle: Throttle | None

    @property
    def notices(self) -> frozenset[str]:
        return frozenset(step.notice for step in self.steps)


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RuleError(field, f"{field} is an integer {low}-{high}")
    return value


def _strings(value: Any, field: str, limit: int) -> list[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise RuleError(field, f"{field} is a list of at most {limit} conditions")
    if not all(isinstance(item, str) for item in value):
        raise RuleError(field, f"{field} holds conditions as text")
    return value


def _conditions(
    value: Any, field: str, kind: CorpEventType, *, client_only: bool = False
) -> tuple[Condition, ...]:
    sources = _strings(value, field, MAX_CONDITIONS)
    try:
        return conditions.parse_all(sources, event_fields=fields_of(kind), client_only=client_only)
    except ConditionError as exc:
        raise RuleError(field, str(exc)) from exc


def _event(value: Any, field: str) -> CorpEventType:
    try:
        return CorpEventType(value)
    except ValueError as exc:
        raise RuleError(field, f"{field}: unknown event type {str(value)[:40]!r}") from exc


def _step(value: Any, field: str, notices: Collection[str] | None) -> Step:
    if not isinstance(value, Mapping) or not set(value) <= _STEP_KEYS or "notice" not in value:
        raise RuleError(field, f"{field} is {{notice, days?, at?, delay_minutes?}}")
    notice = value["notice"]
    if not isinstance(notice, str) or (notices is not None and notice not in notices):
        raise RuleError(
            f"{field}.notice", f"unknown notice {str(notice)[:64]!r}", unknown_notice=True
        )
    days = value.get("days")
    delay = value.get("delay_minutes")
    if days is not None:
        _int(days, f"{field}.days", 0, timing.MAX_DAYS)
    if delay is not None:
        _int(delay, f"{field}.delay_minutes", 0, timing.MAX_DELAY_MINUTES)
    at = value.get("at")
    if at is not None and not isinstance(at, str):
        raise RuleError(f"{field}.at", "at is a local time HH:MM")
    try:
        return Step(notice, timing.timing(days, at, delay))
    except timing.TimingError as exc:
        raise RuleError(f"{field}.at", str(exc)) from exc


def _steps(value: Any, notices: Collection[str] | None) -> tuple[Step, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STEPS:
        raise RuleError("steps", f"steps is a list of 1-{MAX_STEPS} steps")
    return tuple(_step(item, f"steps[{i}]", notices) for i, item in enumerate(value))


def _cancel_on(value: Any) -> tuple[CancelOn, ...]:
    if not isinstance(value, list) or len(value) > MAX_STEPS:
        raise RuleError("cancel_on", f"cancel_on is a list of at most {MAX_STEPS} entries")
    entries = []
    for i, item in enumerate(value):
        field = f"cancel_on[{i}]"
        if not isinstance(item, Mapping) or not set(item) <= {"event", "when"}:
            raise RuleError(field, f"{field} is {{event, when?}}")
        kind = _event(item.get("event"), f"{field}.event")
        entries.append(CancelOn(kind, _conditions(item.get("when", []), f"{field}.when", kind)))
    return tuple(entries)


def _throttle(value: Any) -> Throttle | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"max", "period_hours"}:
        raise RuleError("throttle", "throttle is {max, period_hours}")
    most = _int(value["max"], "throttle.max", 1, 1000)
    hours = _int(value["period_hours"], "throttle.period_hours", 1, 24 * 366)
    return Throttle(most, timedelta(hours=hours))


def parse_rule(definition: Any, *, notices: Collection[str] | None = None) -> Rule:
    """The checked rule; `notices`: the notices steps may name (None: don't check)."""
    if not isinstance(definition, Mapping):
        raise RuleError("definition", "a rule is an object")
    unknown = set(definition) - _RULE_KEYS
    if unknown:
        raise RuleError(sorted(unknown)[0][:40], f"unknown rule field {sorted(unknown)[0][:40]!r}")
    kind = _event(definition.get("event"), "event")
    description = definition.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise RuleError("description", "description is text of at most 500 characters")
    expires = definition.get("expires_after_hours")
    return Rule(
        event=kind,
        description=description,
        when=_conditions(definition.get("when", []), "when", kind),
        steps=_steps(definition.get("steps"), notices),
        still_due=_conditions(definition.get("still_due", []), "still_due", kind, client_only=True),
        cancel_on=_cancel_on(definition.get("cancel_on", [])),
        expires_after=None
        if expires is None
        else timedelta(hours=_int(expires, "expires_after_hours", 1, 24 * 366)),
        throttle=_throttle(definition.get("throttle")),
    )


def cancelling(rule: Rule, kind: CorpEventType) -> Sequence[CancelOn]:
    return [entry for entry in rule.cancel_on if entry.event == kind]
