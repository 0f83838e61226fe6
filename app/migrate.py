"""Schema migrations: Alembic, pointed at the database the settings name.

`upgrade()` is synchronous and runs its own event loop (migrations/env.py calls
`asyncio.run`), so async code must call it through `asyncio.to_thread(upgrade, settings)`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = ROOT / "alembic.ini"
SCRIPT_LOCATION = ROOT / "migrations"

# Shared by migrations/env.py and the test comparing migrations with the models, so both
# judge drift the same way.
CONTEXT_OPTIONS: dict[str, Any] = {"compare_type": True, "compare_server_default": True}


def alembic_config(settings: Settings) -> Config:
    """An Alembic config whose env.py connects to `settings.database_url`, not alembic.ini's."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    _refuse_running_loop()
    _ensure_sqlite_directory(settings.database_url)
    command.upgrade(alembic_config(settings), revision)


def _refuse_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "upgrade() runs its own event loop; from async code call "
        "`await asyncio.to_thread(upgrade, settings)`"
    )


def _ensure_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # URI filenames are the driver's business
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
