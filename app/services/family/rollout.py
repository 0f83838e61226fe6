"""Which families migrate to passport (pure): a stable hash below the percentage, or listed.

The bucket is the first 8 bytes of SHA-256 over a fixed salt and the family's id, modulo
10 000, so it never changes for a family, is spread evenly, and raising the percentage only
ever adds families (a family once in stays in). The allow-list names families or their
owners (UUID strings, as `FAMILY_MIGRATION_ALLOWLIST` normalises them).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection

BUCKETS = 10_000
_SALT = b"engage:family-migration:"


def bucket(account_id: uuid.UUID) -> int:
    digest = hashlib.sha256(_SALT + account_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_rollout(
    account_id: uuid.UUID, owner_id: uuid.UUID, *, percent: int, allowlist: Collection[str]
) -> bool:
    if str(account_id) in allowlist or str(owner_id) in allowlist:
        return True
    return bucket(account_id) < percent * (BUCKETS // 100)
