"""`engage` command line: serve | worker | scheduler | migrate | export-schema | token | admin |
notifier | family | passport-double | demo."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from app.settings import Settings, get_settings

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "app.main:serve_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        # The app reads X-Forwarded-For itself, from the peers in TRUSTED_PROXIES only
        # (app.middleware.ForwardedClientMiddleware), however it is served; uvicorn's own
        # handling would trust FORWARDED_ALLOW_IPS instead and rewrite the client first.
        proxy_headers=False,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.worker import run_worker

    return run_worker(
        settings,
        processes=args.processes or settings.worker_processes,
        threads=args.threads or settings.worker_threads,
    )


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.worker import run_scheduler

    return _run(run_scheduler, settings)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.migrate import upgrade

    upgrade(settings, args.revision)
    print(f"database at revision {args.revision}")
    if args.revision != "head":
        return 0
    from app.notifier_commands import load_command

    return _run(lambda s: load_command(s, force=False), settings)


def schema_sdl() -> str:
    from schema.schema import build_schema

    # The exported contract is the development profile's: introspection on.
    return build_schema(Settings(ENGAGE_ENV="development")).as_str() + "\n"


def _export_schema(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.output)
    target.write_text(schema_sdl(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


def _run(coro_fn: Callable[[Settings], Coroutine[Any, Any, int]], settings: Settings) -> int:
    return asyncio.run(coro_fn(settings))


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.models.identity import Role

    async def create(settings: Settings) -> int:
        from app.db import create_engine, create_session_factory
        from app.services.identity.sessions import create_service_token
        from app.uow import unit_of_work

        engine = create_engine(settings)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                _, secret = await create_service_token(session, args.name, [Role(args.role)])
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            await engine.dispose()
        print(secret)
        return 0

    return _run(create, settings)


def _admin_create(args: argparse.Namespace, settings: Settings) -> int:
    password = args.password or os.environ.get("ENGAGE_ADMIN_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print("error: give --password or ENGAGE_ADMIN_PASSWORD", file=sys.stderr)
            return 2
        password = getpass.getpass("Password: ")

    async def create(settings: Settings) -> int:
        from app.db import create_engine, create_session_factory
        from app.services.errors import DomainError
        from app.services.identity.users import create_admin
        from app.uow import unit_of_work

        engine = create_engine(settings)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                user = await create_admin(session, args.email, password, settings)
        except DomainError as exc:
            print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
            return 2
        finally:
            await engine.dispose()
        print(f"admin {user.email} created ({user.id})")
        return 0

    return _run(create, settings)


def _notifier_load(args: argparse.Namespace, settings: Settings) -> int:
    from app.notifier_commands import load_command

    return _run(lambda s: load_command(s, force=args.force), settings)


def _notifier_dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from app.notifier_commands import dispatch_command

    return _run(dispatch_command, settings)


def _family_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.family_commands import migrate_command
    from jobs.registry import load_actor_modules

    load_actor_modules()  # the batches enqueue family.migrate through the outbox
    return _run(
        lambda s: migrate_command(
            s, dry_run=args.dry_run, batch_size=args.batch_size or s.family_migration_batch_size
        ),
        settings,
    )


def _passport_double(args: argparse.Namespace, settings: Settings) -> int:
    from app.integrations.passport.double import serve

    print(
        f"passport double on http://{args.host}:{args.port} (token {args.token!r}); "
        f"set PASSPORT_URL=http://{args.host}:{args.port} PASSPORT_TOKEN={args.token}"
    )
    serve(
        args.host,
        args.port,
        token=args.token,
        auto_accounts=not args.registered_only,
        without=tuple(args.without),
    )
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.demo import load_demo
    from jobs.registry import load_actor_modules

    load_actor_modules()  # the demo's events enqueue their handling
    return _run(lambda s: load_demo(s, only_once=args.once), settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engage", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run Dramatiq workers for the Redis broker")
    worker.add_argument("--processes", type=int, help="worker processes (WORKER_PROCESSES)")
    worker.add_argument("--threads", type=int, help="threads per process (WORKER_THREADS)")
    worker.set_defaults(handler=_worker)

    scheduler = commands.add_parser("scheduler", help="enqueue periodic jobs (one active)")
    scheduler.set_defaults(handler=_scheduler)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=_migrate)

    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default=str(SCHEMA_FILE))
    export.set_defaults(handler=_export_schema)

    token = commands.add_parser("token", help="service tokens").add_subparsers(
        dest="token_command", required=True
    )
    token_create = token.add_parser("create", help="create a service token; prints it once")
    token_create.add_argument("--name", required=True)
    token_create.add_argument("--role", default="SERVICE", choices=["SERVICE", "ADMIN"])
    token_create.set_defaults(handler=_token_create)

    admin = commands.add_parser("admin", help="admin users").add_subparsers(
        dest="admin_command", required=True
    )
    admin_create = admin.add_parser("create", help="create an admin user")
    admin_create.add_argument("--email", required=True)
    admin_create.add_argument("--password")
    admin_create.set_defaults(handler=_admin_create)

    notifier = commands.add_parser("notifier", help="the corporate notifier").add_subparsers(
        dest="notifier_command", required=True
    )
    notifier_load = notifier.add_parser("load", help="load the notices and rules file")
    notifier_load.add_argument("--force", action="store_true", help="even if loaded before")
    notifier_load.set_defaults(handler=_notifier_load)
    notifier_dispatch = notifier.add_parser("dispatch", help="send the due emails now")
    notifier_dispatch.set_defaults(handler=_notifier_dispatch)

    family = commands.add_parser("family", help="family accounts").add_subparsers(
        dest="family_command", required=True
    )
    family_migrate = family.add_parser(
        "migrate", help="schedule the eligible families' migration to passport (plan B)"
    )
    family_migrate.add_argument("--dry-run", action="store_true", help="count only")
    family_migrate.add_argument(
        "--batch-size", type=int, help="families per batch (FAMILY_MIGRATION_BATCH_SIZE)"
    )
    family_migrate.set_defaults(handler=_family_migrate)

    double = commands.add_parser(
        "passport-double", help="run a local passport double (to try the migration)"
    )
    double.add_argument("--host", default="127.0.0.1")
    double.add_argument("--port", type=int, default=8765)
    double.add_argument("--token", default="passport-dev-token")
    double.add_argument(
        "--registered-only",
        action="store_true",
        help="only phones registered through POST /_double/accounts have accounts",
    )
    double.add_argument(
        "--without", action="append", default=[], metavar="PHONE", help="a phone with no account"
    )
    double.set_defaults(handler=_passport_double)

    demo = commands.add_parser("demo", help="load demo data and print tokens to try")
    demo.add_argument("--once", action="store_true", help="do nothing if demo data exists")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
