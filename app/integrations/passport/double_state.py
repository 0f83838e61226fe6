"""The passport double's memory: accounts, families, idempotency keys, faults, the call log.

Every method takes the one lock: the double's server thread and a test's thread (which
registers accounts or sets faults directly) share a DoubleState. Nothing here awaits; the app
(`double.py`) does the sleeping for latency and timeouts outside the lock.

Contract details the API description leaves open, decided here:

- Accounts: with `auto_accounts`, every valid E.164 phone that is looked up has an account
  (created at the look-up, uid "uid-" + sha256(phone)[:12]) unless it is in `without`;
  `register(phone)` creates one in any case (a phone in `without` too) with the same uid.
- `leave` by a uid that is not a member is 404 `member_not_found` (leaving is not idempotent);
  `remove` of a non-member (even an unknown uid) is 204.
- An Idempotency-Key remembers its 201 answer until `reset(data=True)`, even after the family
  is deleted; only a 201 is remembered (a 409 with that key can succeed later). The same key
  with another admin_uid is 422 `idempotency_key_reused`.
- An invalid phone is 400 `invalid_phone`; a malformed body 400 `invalid_request`.

Faults (`set_faults`, merged into the current ones; `reset()` clears them) apply to the API
calls of `operations` (all when None), after the authorization check (a 401 consumes none):
`latency_ms` delays each such call; `timeout_next` makes the next N hang for HANG_SECONDS
(then answer fail_status); `fail_next` makes the next N answer `fail_status`;
`fail_after_members` makes every add_member answer fail_status once that many add_member
calls succeeded since the fault was set. All of them answer before the work, so a failed
call changes nothing, unless `fail_after_work` is true: then the work is done and the answer
is the failure (or the hang), as when a response is lost.
"""

from __future__ import annotations

import enum
import hashlib
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.integrations.passport.metrics import OPERATIONS

HANG_SECONDS = 30.0
MAX_MEMBERS = 8  # the admin included
CALL_LOG_SIZE = 10_000
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

Body = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Body | None = None  # None: no body (204)


def error(status: int, code: str, **extra: Any) -> Answer:
    return Answer(status, {"error": code, **extra})


class FaultKind(enum.Enum):
    FAIL = "fail"
    HANG = "hang"


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    fail_status: int = 503
    fail_next: int = 0
    timeout_next: int = 0
    fail_after_members: int | None = None
    fail_after_work: bool = False
    operations: frozenset[str] | None = None

    def covers(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


@dataclass(frozen=True)
class Plan:
    """What the faults do to one API call."""

    latency_seconds: float = 0.0
    fault: FaultKind | None = None
    after_work: bool = False
    status: int = 503


@dataclass
class _Family:
    family_id: str
    admin_uid: str
    members: list[str] = field(default_factory=list)  # uids, the admin first


def uid_for(phone: str) -> str:
    return "uid-" + hashlib.sha256(phone.encode()).hexdigest()[:12]


def parse_faults(current: Faults, changes: Mapping[str, Any]) -> Faults:
    """`current` with `changes` applied; ValueError names a bad key or value."""
    unknown = set(changes) - set(Faults.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown fault options: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for key in ("latency_ms", "fail_next", "timeout_next"):
        if key in changes:
            values[key] = _count(key, changes[key])
    if "fail_status" in changes:
        status = changes["fail_status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError("fail_status must be an HTTP status")
        values["fail_status"] = status
    if "fail_after_members" in changes:
        limit = changes["fail_after_members"]
        if limit is not None:
            limit = _count("fail_after_members", limit)
        values["fail_after_members"] = limit
    if "fail_after_work" in changes:
        if not isinstance(changes["fail_after_work"], bool):
            raise ValueError("fail_after_work must be a boolean")
        values["fail_after_work"] = changes["fail_after_work"]
    if "operations" in changes:
        values["operations"] = _operations(changes["operations"])
    return replace(current, **values)


def _count(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


def _operations(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("operations must be a list of operation names")
    unknown = set(value) - set(OPERATIONS)
    if unknown:
        raise ValueError(f"unknown operations: {sorted(unknown)}")
    return frozenset(value)


class DoubleState:
    def __init__(self, *, auto_accounts: bool = True, without: Iterable[str] = ()) -> None:
        self.auto_accounts = auto_accounts
        self.without = frozenset(without)
        self.closing = False  # set at shutdown: hanging calls give up their sleep
        self._lock = threading.Lock()
        self._phones: dict[str, str] = {}  # uid → phone
        self._uids: dict[str, str] = {}  # phone → uid
        self._families: dict[str, _Family] = {}
        self._family_of: dict[str, str] = {}  # uid → family_id
        self._keys: dict[str, tuple[str, Answer]] = {}  # Idempotency-Key → (admin_uid, 201)
        self._calls: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_SIZE)
        self._faults = Faults()
        self._member_adds = 0  # successful add_member calls since fail_after_members was set

    # Control

    def register(self, phone: str) -> Body:
        """A portal account for the phone (the existing one if any); ValueError if invalid."""
        if not E164.fullmatch(phone):
            raise ValueError("not an E.164 phone number")
        with self._lock:
            return {"uid": self._ensure_account(phone), "phone": phone}

    def set_faults(self, **changes: Any) -> Faults:
        with self._lock:
            self._faults = parse_faults(self._faults, changes)
            if "fail_after_members" in changes:
                self._member_adds = 0
            return self._faults

    def reset(self, *, data: bool = False, calls: bool = False) -> None:
        """Clears the faults; with calls, the call log; with data, every account, family,
        idempotency key and the call log."""
        with self._lock:
            self._faults = Faults()
            self._member_adds = 0
            if calls or data:
                self._calls.clear()
            if data:
                for table in (self._phones, self._uids, self._families, self._family_of):
                    table.clear()
                self._keys.clear()

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(c) for c in self._calls if operation is None or c["operation"] == operation
            ]

    def snapshot(self) -> Body:
        with self._lock:
            accounts = [{"uid": uid, "phone": phone} for uid, phone in self._phones.items()]
            families = [self._family_json(f) for f in self._families.values()]
        return {"accounts": accounts, "families": families}

    # The app's bookkeeping

    def record_call(self, operation: str, method: str, path: str) -> dict[str, Any]:
        """A new call-log entry; its status is None until `answered`."""
        entry: dict[str, Any] = {
            "operation": operation,
            "method": method,
            "path": path,
            "status": None,
        }
        with self._lock:
            self._calls.append(entry)
        return entry

    def answered(self, entry: dict[str, Any], status: int) -> None:
        with self._lock:
            entry["status"] = status
            if entry["operation"] == "add_member" and status == 200:
                self._member_adds += 1

    def plan(self, operation: str) -> Plan:
        """Decides (and consumes) the faults for one authorized API call."""
        with self._lock:
            faults = self._faults
            if not faults.covers(operation):
                return Plan()
            plan = Plan(
                latency_seconds=faults.latency_ms / 1000,
                after_work=faults.fail_after_work,
                status=faults.fail_status,
            )
            if faults.timeout_next:
                self._faults = replace(faults, timeout_next=faults.timeout_next - 1)
                return replace(plan, fault=FaultKind.HANG)
            if faults.fail_next:
                self._faults = replace(faults, fail_next=faults.fail_next - 1)
                return replace(plan, fault=FaultKind.FAIL)
            limit = faults.fail_after_members
            if operation == "add_member" and limit is not None and self._member_adds >= limit:
                return replace(plan, fault=FaultKind.FAIL)
            return plan

    # The API (see double.py for the routes)

    def find_account(self, phone: str) -> Answer:
        if not E164.fullmatch(phone):
            return error(400, "invalid_phone")
        with self._lock:
            uid = self._uids.get(phone)
            if uid is None and self.auto_accounts and phone not in self.without:
                uid = self._ensure_account(phone)
        if uid is None:
            return error(404, "account_not_found")
        return Answer(200, {"uid": uid, "phone": phone})

    def family_of(self, uid: str) -> Answer:
        with self._lock:
            if uid not in self._phones:
                return error(404, "account_not_found")
            family_id = self._family_of.get(uid)
            if family_id is None:
                return error(404, "family_not_found")
            return Answer(200, self._family_json(self._families[family_id]))

    def get_family(self, family_id: str) -> Answer:
        with self._lock:
            family = self._families.get(family_id)
            if family is None:
                return error(404, "family_not_found")
            return Answer(200, self._family_json(family))

    def create_family(self, admin_uid: str, key: str) -> Answer:
        with self._lock:
            remembered = self._keys.get(key)
            if remembered is not None:
                uid, answer = remembered
                return answer if uid == admin_uid else error(422, "idempotency_key_reused")
            if admin_uid not in self._phones:
                return error(404, "account_not_found")
            current = self._family_of.get(admin_uid)
            if current is not None:
                return error(409, "already_in_family", family_id=current)
            family = _Family("fam-" + uuid.uuid4().hex[:12], admin_uid, [admin_uid])
            self._families[family.family_id] = family
            self._family_of[admin_uid] = family.family_id
            answer = Answer(201, self._family_json(family))
            self._keys[key] = (admin_uid, answer)
            return answer

    def delete_family(self, family_id: str) -> Answer:
        with self._lock:
            family = self._families.pop(family_id, None)
            if family is None:
                return error(404, "family_not_found")
            for uid in family.members:
                self._family_of.pop(uid, None)
            return Answer(204)

    def add_member(self, family_id: str, uid: str) -> Answer:
        with self._lock:
            family = self._families.get(family_id)
            if family is None:
                return error(404, "family_not_found")
            if uid not in self._phones:
                return error(404, "account_not_found")
            current = self._family_of.get(uid)
            if current is not None and current != family_id:
                return error(409, "already_in_family", family_id=current)
            if current is None:
                if len(family.members) >= MAX_MEMBERS:
                    return error(422, "family_full")
                family.members.append(uid)
                self._family_of[uid] = family_id
            return Answer(200, self._family_json(family))

    def remove_member(self, family_id: str, uid: str) -> Answer:
        return self._remove(family_id, uid, missing=Answer(204))

    def leave_family(self, family_id: str, uid: str) -> Answer:
        return self._remove(family_id, uid, missing=error(404, "member_not_found"))

    # Under the lock

    def _remove(self, family_id: str, uid: str, *, missing: Answer) -> Answer:
        with self._lock:
            family = self._families.get(family_id)
            if family is None:
                return error(404, "family_not_found")
            if uid == family.admin_uid:
                return error(409, "cannot_remove_admin")
            if uid not in family.members:
                return missing
            family.members.remove(uid)
            self._family_of.pop(uid, None)
            return Answer(204)

    def _ensure_account(self, phone: str) -> str:
        uid = self._uids.get(phone)
        if uid is None:
            uid = uid_for(phone)
            self._uids[phone], self._phones[uid] = uid, phone
        return uid

    def _family_json(self, family: _Family) -> Body:
        members = [
            {
                "uid": uid,
                "phone": self._phones[uid],
                "role": "admin" if uid == family.admin_uid else "member",
            }
            for uid in family.members
        ]
        return {"family_id": family.family_id, "admin_uid": family.admin_uid, "members": members}
