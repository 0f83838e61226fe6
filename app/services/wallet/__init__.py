"""The wallet: `ledger` (the only writer of wallet entries, idempotent by source key),
`cashback` (grants and the credits they earn), `reading` (balances and entries)."""
