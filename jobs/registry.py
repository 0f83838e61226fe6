"""Every module that declares actors: the job backbone's and one `jobs/<domain>.py` per domain
in `app.domains.DOMAINS` that has actors. Importing one registers its actors."""

from __future__ import annotations

import importlib

from app.domains import domain_modules

BACKBONE_MODULES = ("jobs.outbox",)


def load_actor_modules() -> None:
    for module in BACKBONE_MODULES:
        importlib.import_module(module)
    for _ in domain_modules("jobs"):
        pass
