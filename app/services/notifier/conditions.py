"""Rule conditions: a tiny, closed expression language over a client and an event (pure).

A condition is one comparison, written as text in the catalog file and in admin edits:

    client.balanceMinor < client.lowBalanceThresholdMinor
    event.contractType == 'PREPAID'
    client.firstRideAt is null

Operands are paths (`client.<field>`, `event.<field>`) or literals (integers, 'quoted
strings', true, false, null). Decisions:
- parsed once, when a rule is loaded or edited: an unknown path or operator is refused then
  (naming the condition), never found at send time;
- the language has no calls, attributes beyond the two roots, or arithmetic, so an admin's
  rule can't run code; a list of conditions means all of them;
- a comparison of a missing or null value with `<`/`>` is false (never an error): a rule
  whose data is absent does not fire;
- `still_due` conditions (re-checked at send time) may read only `client.*`: the event is
  history, the client is now.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CLIENT_FIELDS = frozenset(
    {
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
)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ORDERING = frozenset({"<", "<=", ">", ">="})
_TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|<=|>=|<|>)|(?P<str>'[^'\\]{0,200}')|(?P<int>-?\d{1,18})"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]{0,80}))"
)
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


class ConditionError(ValueError):
    """A condition that can't be parsed or names something unknown."""


@dataclass(frozen=True, slots=True)
class Path:
    root: str  # "client" | "event"
    name: str

    def value(self, client: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
        return (client if self.root == "client" else event).get(self.name)


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


Operand = Path | Literal


@dataclass(frozen=True, slots=True)
class Condition:
    source: str
    left: Operand
    op: str  # one of _COMPARE, or "is null" / "is not null"
    right: Operand | None

    def holds(self, client: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
        left = _resolve(self.left, client, event)
        if self.op == "is null":
            return left is None
        if self.op == "is not null":
            return left is not None
        assert self.right is not None
        right = _resolve(self.right, client, event)
        if self.op in _ORDERING:
            return _ordered(self.op, left, right)
        return _COMPARE[self.op](left, right)

    @property
    def roots(self) -> frozenset[str]:
        return frozenset(o.root for o in (self.left, self.right) if isinstance(o, Path))


def _resolve(operand: Operand, client: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    return operand.value(client, event) if isinstance(operand, Path) else operand.value


def _ordered(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None or isinstance(left, bool) or isinstance(right, bool):
        return False
    if type(left) is not type(right) and not (
        isinstance(left, int | float) and isinstance(right, int | float)
    ):
        return False
    return _COMPARE[op](left, right)


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped = source.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise ConditionError(f"{source!r}: can't read from {stripped[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _operand(kind: str, text: str, source: str, event_fields: frozenset[str]) -> Operand:
    if kind == "str":
        return Literal(text[1:-1])
    if kind == "int":
        return Literal(int(text))
    if kind == "word" and text in _LITERALS:
        return Literal(_LITERALS[text])
    if kind == "word" and "." in text:
        root, _, name = text.partition(".")
        if root == "client" and name in CLIENT_FIELDS:
            return Path(root, name)
        if root == "event" and name in event_fields:
            return Path(root, name)
        raise ConditionError(f"{source!r}: unknown field {text!r}")
    raise ConditionError(f"{source!r}: {text!r} is not a field or a value")


def parse(source: str, *, event_fields: frozenset[str]) -> Condition:
    """One condition; `event_fields` are the payload fields of the rule's event type."""
    if len(source) > 300:
        raise ConditionError("a condition is at most 300 characters")
    tokens = _tokens(source)
    words = [text for _, text in tokens]
    if len(tokens) in (3, 4) and words[1] == "is" and words[-1] == "null":
        if len(tokens) == 4 and words[2] != "not":
            raise ConditionError(f"{source!r}: write 'is null' or 'is not null'")
        left = _operand(*tokens[0], source, event_fields)
        return Condition(source, left, "is not null" if len(tokens) == 4 else "is null", None)
    if len(tokens) != 3 or tokens[1][0] != "op":
        raise ConditionError(f"{source!r}: write '<field> <op> <field or value>'")
    left = _operand(*tokens[0], source, event_fields)
    right = _operand(*tokens[2], source, event_fields)
    if not isinstance(left, Path) and not isinstance(right, Path):
        raise ConditionError(f"{source!r}: compares two constants")
    return Condition(source, left, tokens[1][1], right)


def parse_all(
    sources: Sequence[str], *, event_fields: frozenset[str], client_only: bool = False
) -> tuple[Condition, ...]:
    conditions = tuple(parse(source, event_fields=event_fields) for source in sources)
    if client_only:
        for condition in conditions:
            if "event" in condition.roots:
                raise ConditionError(
                    f"{condition.source!r}: a send-time check reads only client.* fields"
                )
    return conditions


def all_hold(
    conditions: Sequence[Condition], client: Mapping[str, Any], event: Mapping[str, Any]
) -> bool:
    return all(condition.holds(client, event) for condition in conditions)
