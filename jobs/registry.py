"""Every module that declares actors; importing one registers its actors."""

from __future__ import annotations

import importlib

ACTOR_MODULES = ("jobs.goals", "jobs.outbox", "jobs.promocodes", "jobs.operations")


def load_actor_modules() -> None:
    for module in ACTOR_MODULES:
        importlib.import_module(module)
