"""The domains, in one list: the only shared line a new domain adds.

A domain is the same-named package (or module) in every layer: `app/models/<d>.py`,
`app/services/<d>/`, `schema/<d>/`, `resolvers/<d>/`, `jobs/<d>.py`, `tests/<d>/`. Each layer
finds what the domains contribute by importing `<layer>.<d>` for every name here:

- `app.models.<d>`: its tables (importing the module registers them);
- `app.services.<d>.privacy.forget_user`: what account deletion does to the domain's data;
- `resolvers.<d>.contribution`: its Query / Mutation / Subscription classes and its fields on
  `Viewer` and `Launch` (see `resolvers.contributions`);
- `jobs.<d>`: its actors (importing the module declares them).

A layer where a domain has nothing is simply absent (the wallet has no actors of its own).
Order matters where lists are merged: it is the order of fields in the schema.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

DOMAINS: tuple[str, ...] = (
    "identity",
    "orders",
    "goals",
    "wallet",
    "promocodes",
    "promotions",
    "notifier",
    "family",
    "operations",
)


def domain_modules(layer: str, leaf: str = "") -> Iterator[ModuleType]:
    """`<layer>.<domain>[.<leaf>]` for every domain that has one, in `DOMAINS` order.

    Only a missing module is skipped: an import error inside one is raised.
    """
    for domain in DOMAINS:
        name = f"{layer}.{domain}" + (f".{leaf}" if leaf else "")
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
