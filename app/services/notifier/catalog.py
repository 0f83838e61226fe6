"""The shipped notices and rules: `notices.toml`, loaded into the database once per version.

The file carries a `version`; a start (`Runtime.start`), `engage migrate` and
`engage notifier load` load it when that version was never loaded (`notifier_catalogs`
remembers), so every process may try and one does the work: loads take turns on
`serialize_on("notifier:catalog")`.

A load writes what changed, as new versions, and never rewrites history:
- a notice is created, or its flags and description updated;
- a template gets a new version where the file's text differs from the current one;
- a rule is created, or gets a new version where its definition differs.
An operator's edit wins over the file: a template or rule whose current version was written
by an admin is kept (and reported) until the admin's version is replaced by hand. The whole
file is checked before anything is written: a bad template or rule fails the load, naming it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import serialize_on
from app.models.notifier import (
    CorpEventType,
    Notice,
    NoticeTemplate,
    NotifierCatalog,
    NotifierRule,
    NotifierRuleVersion,
)
from app.services.notifier import templates
from app.services.notifier.rules import RuleError, parse_rule

CATALOG_FILE = Path(__file__).with_name("notices.toml")
LOCALES = ("ru", "en")
NOTICE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
RULE_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CATALOG_PREFIX = "catalog:"


class CatalogError(ValueError):
    """The file is wrong; the message names the notice, rule or field."""


@dataclass
class LoadReport:
    version: int
    loaded: bool
    created: list[str] = field(default_factory=list)  # "notice:X", "template:X/ru", "rule:k"
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # an admin's version left in place


@dataclass(frozen=True, slots=True)
class _Notice:
    key: str
    critical: bool
    description: str
    templates: dict[str, templates.TemplateSource]


@dataclass(frozen=True, slots=True)
class Catalog:
    version: int
    notices: dict[str, _Notice]
    rules: dict[str, dict[str, Any]]


def read_catalog(path: Path = CATALOG_FILE) -> Catalog:
    """The file, parsed and checked in full (templates rendered against sample data)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CatalogError("version is a positive integer")
    notices = {key: _notice(key, value) for key, value in dict(data.get("notices", {})).items()}
    rules = dict(data.get("rules", {}))
    for key, definition in rules.items():
        if not RULE_KEY.match(key):
            raise CatalogError(f"rule {key!r}: a key is 1-64 of a-z, 0-9, '-' and '_'")
        try:
            parse_rule(definition, notices=notices)
        except RuleError as exc:
            raise CatalogError(f"rule {key!r}, {exc.field}: {exc.message}") from exc
    return Catalog(version, notices, rules)


def _notice(key: str, value: Any) -> _Notice:
    if not NOTICE_KEY.match(key) or not isinstance(value, Mapping):
        raise CatalogError(f"notice {key!r}: a key is a letter then 0-63 letters or digits")
    sources = {}
    for locale in LOCALES:
        part = value.get("templates", {}).get(locale)
        if not isinstance(part, Mapping):
            raise CatalogError(f"notice {key!r} has no {locale} template")
        source = templates.TemplateSource(
            subject=str(part.get("subject", "")),
            text=str(part.get("text", "")),
            html=str(part.get("html", "")),
        )
        problems = templates.check(source, locale)
        if problems:
            first = problems[0]
            raise CatalogError(
                f"notice {key!r}, {locale} {first.part}, line {first.line}: {first.message}"
            )
        sources[locale] = source
    return _Notice(
        key, bool(value.get("critical", False)), str(value.get("description", ""))[:500], sources
    )


async def loaded_version(session: AsyncSession) -> int:
    latest = await session.scalar(select(func.max(NotifierCatalog.version)))
    return int(latest or 0)


async def load_catalog(
    session: AsyncSession, catalog: Catalog | None = None, *, force: bool = False
) -> LoadReport:
    """Load the catalog if its version is new (or `force`); the caller commits."""
    catalog = catalog or read_catalog()
    await serialize_on(session, "notifier:catalog")
    seen = await session.get(NotifierCatalog, catalog.version)
    if seen is not None and not force:
        return LoadReport(catalog.version, loaded=False)
    if seen is None:
        session.add(NotifierCatalog(version=catalog.version))
    report = LoadReport(catalog.version, loaded=True)
    for notice in catalog.notices.values():
        await _load_notice(session, notice, catalog.version, report)
    await session.flush()
    for key, definition in catalog.rules.items():
        await _load_rule(session, key, definition, catalog.version, report)
    await session.flush()
    return report


async def _load_notice(
    session: AsyncSession, notice: _Notice, version: int, report: LoadReport
) -> None:
    row = await session.get(Notice, notice.key)
    if row is None:
        session.add(
            Notice(key=notice.key, critical=notice.critical, description=notice.description)
        )
        report.created.append(f"notice:{notice.key}")
    elif (row.critical, row.description) != (notice.critical, notice.description):
        row.critical, row.description = notice.critical, notice.description
        report.updated.append(f"notice:{notice.key}")
    await session.flush()
    for locale, source in notice.templates.items():
        await _load_template(session, notice.key, locale, source, version, report)


async def current_template(
    session: AsyncSession, notice: str, locale: str
) -> NoticeTemplate | None:
    return await session.scalar(
        select(NoticeTemplate)
        .where(NoticeTemplate.notice == notice, NoticeTemplate.locale == locale)
        .order_by(NoticeTemplate.version.desc())
        .limit(1)
    )


async def _load_template(
    session: AsyncSession,
    notice: str,
    locale: str,
    source: templates.TemplateSource,
    version: int,
    report: LoadReport,
) -> None:
    name = f"template:{notice}/{locale}"
    current = await current_template(session, notice, locale)
    if current is not None:
        if (current.subject, current.text_body, current.html_body) == (
            source.subject,
            source.text,
            source.html,
        ):
            return
        if not current.created_by.startswith(_CATALOG_PREFIX):
            report.kept.append(name)
            return
    session.add(
        NoticeTemplate(
            notice=notice,
            locale=locale,
            version=(current.version + 1) if current else 1,
            subject=source.subject,
            text_body=source.text,
            html_body=source.html,
            created_by=f"{_CATALOG_PREFIX}v{version}",
        )
    )
    (report.updated if current else report.created).append(name)


async def _load_rule(
    session: AsyncSession, key: str, definition: dict[str, Any], version: int, report: LoadReport
) -> None:
    name = f"rule:{key}"
    rule = await session.scalar(select(NotifierRule).where(NotifierRule.key == key))
    kind = CorpEventType(definition["event"])
    if rule is None:
        rule = NotifierRule(key=key, event_type=kind, current_version=1, active=True)
        session.add(rule)
        await session.flush()
        session.add(_version(rule, 1, definition, version))
        report.created.append(name)
        return
    current = await session.scalar(
        select(NotifierRuleVersion).where(
            NotifierRuleVersion.rule_id == rule.id,
            NotifierRuleVersion.version == rule.current_version,
        )
    )
    if current is not None and current.definition == definition:
        return
    if current is not None and current.catalog_version is None:
        report.kept.append(name)
        return
    rule.current_version += 1
    rule.event_type = kind
    session.add(_version(rule, rule.current_version, definition, version))
    report.updated.append(name)


def _version(
    rule: NotifierRule, number: int, definition: dict[str, Any], catalog_version: int | None
) -> NotifierRuleVersion:
    return NotifierRuleVersion(
        rule_id=rule.id,
        version=number,
        definition=definition,
        catalog_version=catalog_version,
        created_by=f"{_CATALOG_PREFIX}v{catalog_version}" if catalog_version else "admin",
    )
