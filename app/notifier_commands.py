"""The notifier's commands: load the catalog file, run the dispatcher once (`engage notifier
…`), and the catalog load every start and `engage migrate` make (a no-op once loaded)."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import DBAPIError

from app.db import SessionFactory, create_engine, create_session_factory
from app.integrations.mail import mail_backend
from app.services.notifier.catalog import CatalogError, LoadReport, load_catalog
from app.settings import Settings
from app.uow import unit_of_work

log = structlog.get_logger("engage.notifier")


async def ensure_catalog(session_factory: SessionFactory, *, force: bool = False) -> LoadReport:
    """Load `notices.toml` if its version is new (or `force`); committed here."""
    async with unit_of_work(session_factory) as session:
        report = await load_catalog(session, force=force)
    if report.loaded:
        log.info(
            "notifier.catalog_loaded",
            version=report.version,
            created=len(report.created),
            updated=len(report.updated),
            kept=report.kept,
        )
    return report


async def ensure_catalog_on_start(session_factory: SessionFactory) -> None:
    """The start's load: a database not migrated yet (or a broken file) is logged, not fatal
    — the API serves everything else, and `engage migrate` loads the catalog afterwards."""
    try:
        await ensure_catalog(session_factory)
    except (DBAPIError, CatalogError) as exc:
        log.warning("notifier.catalog_not_loaded", error=str(exc).splitlines()[0][:300])


async def load_command(settings: Settings, *, force: bool) -> int:
    engine = create_engine(settings)
    try:
        report = await ensure_catalog(create_session_factory(engine), force=force)
    except CatalogError as exc:
        print(f"error: {exc}")
        return 2
    finally:
        await engine.dispose()
    if not report.loaded:
        print(f"notifier catalog v{report.version} is loaded already (--force loads it again)")
        return 0
    print(
        f"notifier catalog v{report.version} loaded: {_counted(report.created)} created, "
        f"{_counted(report.updated)} updated"
    )
    if report.kept:
        print(f"  kept (an admin's version is current): {', '.join(report.kept)}")
    return 0


def _counted(names: list[str]) -> str:
    kinds: dict[str, int] = {}
    for name in names:
        kind = name.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}s" for kind, n in kinds.items()) or "nothing"


async def dispatch_command(settings: Settings) -> int:
    from jobs.notifier import dispatch_all, dispatch_config

    engine = create_engine(settings)
    factory = create_session_factory(engine)
    try:
        totals = await dispatch_all(
            lambda: unit_of_work(factory), mail_backend(settings), dispatch_config(settings)
        )
    finally:
        await engine.dispose()
    print(
        f"claimed {totals.claimed}: sent {totals.sent}, retried {totals.retried}, "
        f"failed {totals.failed}, cancelled {totals.cancelled}"
    )
    return 0
