"""Loading the catalog file (both backends): once per version, new versions where the file
changed, an admin's edit never overwritten, and a bad file loading nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.runtime import Runtime
from app.services.notifier import templates
from app.services.notifier.catalog import CATALOG_FILE, CatalogError, load_catalog, read_catalog
from app.services.notifier.editing import save_template
from tests.factories.notifier import load_catalog as load_shipped
from tests.helpers import row_counts


def _edited(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = CATALOG_FILE.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "notices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _raise_version(text: str) -> tuple[str, str]:
    found = re.search(r"^version = (\d+)$", text, re.M)
    assert found is not None
    return found.group(0), f"version = {int(found.group(1)) + 1}"


async def test_a_new_version_writes_what_changed_and_keeps_an_admins_edit(
    runtime: Runtime, tmp_path: Path
) -> None:
    await load_shipped(runtime)
    async with runtime.session_factory() as session, session.begin():
        await save_template(
            session,
            "LowBalanceNotice",
            "en",
            templates.TemplateSource("Top up now", "Hi {{ client.name }}", "<p>Hi</p>"),
            actor="user:admin",
            reason="our own copy",
        )
    shipped = CATALOG_FILE.read_text(encoding="utf-8")
    en_limit = re.search(
        r'\[notices\.LimitIsOverNotice\.templates\.en\]\nsubject = "([^"]+)"', shipped
    )
    en_low = re.search(
        r'\[notices\.LowBalanceNotice\.templates\.en\]\nsubject = "([^"]+)"', shipped
    )
    assert en_limit is not None and en_low is not None
    path = _edited(
        tmp_path,
        _raise_version(shipped),
        (f'subject = "{en_limit.group(1)}"', 'subject = "The limit is used up"'),
        (f'subject = "{en_low.group(1)}"', 'subject = "Low balance (v2)"'),
    )
    async with runtime.session_factory() as session, session.begin():
        report = await load_catalog(session, read_catalog(path))
    assert report.loaded
    assert report.updated == ["template:LimitIsOverNotice/en"]
    assert report.kept == ["template:LowBalanceNotice/en"]
    assert report.created == []


async def test_a_bad_file_loads_nothing(runtime: Runtime, tmp_path: Path) -> None:
    before = await row_counts(runtime)
    broken = _edited(tmp_path, ("{{ client.name }}", "{{ client.nmae }}"))
    with pytest.raises(CatalogError, match="line"):
        read_catalog(broken)
    unknown = _edited(tmp_path, ('notice = "LowBalanceNotice"', 'notice = "NoSuchNotice"'))
    with pytest.raises(CatalogError, match="NoSuchNotice"):
        read_catalog(unknown)
    not_toml = tmp_path / "bad.toml"
    not_toml.write_text("version = [", encoding="utf-8")
    with pytest.raises(CatalogError):
        read_catalog(not_toml)
    assert await row_counts(runtime) == before
