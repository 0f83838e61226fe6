"""Every knob of engage, read from the environment or a `.env` file.

The defaults are the embedded mode: a SQLite file, no Redis, GraphiQL on. Setting
`ENGAGE_ENV=production` switches the API to its locked-down profile.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_JWT_SECRET = "engage-dev-secret-change-me-0123456789abcdef"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="ENGAGE_ENV"
    )
    database_url: str = "sqlite+aiosqlite:///./engage.db"
    database_pool_size: int = Field(default=10, ge=1)
    database_echo: bool = False
    # Off by default: a checkout ping is a round trip per transaction. A connection that died
    # (database restart) fails one statement, and SQLAlchemy then invalidates the pool.
    database_pool_pre_ping: bool = False
    database_pool_recycle_seconds: int = Field(default=1800, ge=-1)
    redis_url: str | None = None
    # One pool per process: requests beyond it wait up to the timeout for a free connection
    # (redis-py's default pool refuses the 101st concurrent caller instead).
    redis_max_connections: int = Field(default=100, ge=2)
    redis_pool_timeout_seconds: float = Field(default=5.0, gt=0)

    # GraphQL surface
    graphiql: bool | None = None
    introspection: bool | None = None
    mask_errors: bool | None = None
    max_query_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2000, ge=10)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_page_size: int = Field(default=100, ge=1)
    # GraphQL multipart requests (file uploads): on for the admin CSV assignment; the limit
    # is on the whole multipart body, counted while it streams in.
    multipart_uploads_enabled: bool = True
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    # Tokens
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "engage"
    jwt_audience: str = "engage-api"
    jwt_jwks_url: str | None = None
    # Access tokens whose signature was checked, kept per process (app/auth.py); 0: none.
    jwt_verify_cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    # Login rate limiting: attempts per window, per account and per IP
    login_max_attempts: int = Field(default=5, ge=1)
    login_ip_max_attempts: int = Field(default=30, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)

    # Passwords
    password_min_length: int = Field(default=10, ge=8)
    password_max_length: int = Field(default=128, le=1024)
    # Threads per process that hash and verify passwords off the event loop (app.auth).
    password_hash_concurrency: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=256
    )

    # Background jobs (docs/jobs.md). With no REDIS_URL the API process runs an in-process
    # broker, worker and scheduler; with Redis, `engage worker` and `engage scheduler` do.
    jobs_in_process: bool | None = None
    worker_threads: int = Field(default=8, ge=1, le=64)
    worker_processes: int = Field(default=1, ge=1, le=64)
    worker_shutdown_timeout_seconds: int = Field(default=30, ge=1)
    # The longest an idle worker sleeps between polls of an empty queue (Dramatiq backs off
    # up to it): the added latency of the first job after a quiet spell (docs/jobs.md).
    worker_poll_timeout_ms: int = Field(default=100, ge=10, le=60_000)
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    job_max_retries: int = Field(default=8, ge=0)
    job_min_backoff_ms: int = Field(default=1000, ge=1)
    job_max_backoff_ms: int = Field(default=300_000, ge=1)
    # Rows published within this window are marked sent in one UPDATE; 0 marks each commit.
    outbox_mark_sent_window_ms: int = Field(default=20, ge=0, le=5000)
    outbox_sweep_grace_seconds: int = Field(default=30, ge=1)
    # A row the broker accepted this long ago that no worker finished was lost by the broker
    # and is published again, at most OUTBOX_MAX_PUBLISHES times in all (docs/jobs.md). Keep
    # it above the longest queue wait plus retry backoff you expect: a redelivery too early
    # only costs a duplicate delivery, which actors tolerate.
    outbox_redeliver_after_seconds: int = Field(default=900, ge=1)
    outbox_max_publishes: int = Field(default=5, ge=1, le=100)
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_retention_hours: int = Field(default=72, ge=1)
    # Cron expressions per periodic actor: five fields, or six with seconds first.
    schedules: dict[str, str] = Field(
        default_factory=lambda: {
            "outbox.sweep": "* * * * *",
            "outbox.cleanup": "17 * * * *",
            "promocodes.release_stale_reservations": "* * * * *",
            "goals.expire": "* * * * *",
            "goals.remind": "*/5 * * * *",
            "promotions.expire": "* * * * *",
            "promotions.remind": "*/5 * * * *",
            "notifier.dispatch_due": "* * * * *",
            "family.expire_holds": "*/5 * * * *",
        }
    )
    scheduler_in_process: bool | None = None
    scheduler_lock_ttl_seconds: int = Field(default=30, ge=2)

    # Promocodes
    promocode_reservation_ttl_seconds: int = Field(default=900, ge=10)
    promocode_max_rejections: int = Field(default=10, ge=1)  # per user, per window
    promocode_ip_max_rejections: int = Field(default=50, ge=1)  # per IP, per window
    promocode_rejection_window_seconds: int = Field(default=600, ge=1)

    # Personal goals (docs/goals.md)
    goals_expiry_grace_seconds: int = Field(default=60, ge=0, le=86_400)
    goals_reminder_before_hours: int = Field(default=24, ge=0, le=24 * 30)  # 0: no reminders
    goals_batch_size: int = Field(default=200, ge=1, le=10_000)
    goals_recent_done: int = Field(default=5, ge=0, le=50)  # DONE goals viewer.goals shows

    # Promotion rewards (docs/promotions.md). The grace leaves room for a ride completed just
    # before the challenge's deadline but processed after it: the stored status waits for it.
    promotions_expiry_grace_seconds: int = Field(default=60, ge=0, le=86_400)
    promotions_reminder_before_hours: int = Field(default=48, ge=0, le=24 * 30)  # 0: none
    promotions_batch_size: int = Field(default=200, ge=1, le=10_000)

    # Corporate notifier (docs/notifier.md). SMTP_URL picks the SMTP backend
    # (smtp://user:password@host:587?starttls=true, smtps://host:465 for implicit TLS);
    # without it mail is written as .eml files under MAIL_FILE_DIR (the embedded default).
    smtp_url: str | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    smtp_validate_certs: bool = True
    mail_from: str = "engage <noreply@engage.local>"
    mail_file_dir: str = "./var/mail"
    # The corporate cabinet the emails link to.
    notifier_cabinet_url: str = "https://corp.example.com"
    notifier_batch_size: int = Field(default=100, ge=1, le=5_000)
    notifier_max_attempts: int = Field(default=5, ge=1, le=50)
    notifier_retry_base_seconds: int = Field(default=60, ge=1, le=86_400)
    notifier_retry_max_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)
    # A claimed email not marked within this time (its dispatcher died) is claimed again.
    notifier_lease_seconds: int = Field(default=300, ge=10, le=86_400)

    # Family accounts (docs/family.md). Without PASSPORT_URL (the embedded default) the
    # migration to passport is off and the API says so.
    passport_url: str | None = None  # e.g. http://127.0.0.1:8765
    passport_token: str = ""  # sent as "Authorization: Bearer <token>"
    passport_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    passport_retries: int = Field(default=2, ge=0, le=10)  # extra tries of idempotent calls
    passport_retry_base_seconds: float = Field(default=0.1, ge=0, le=30)
    # Consecutive failures that open the circuit, and how long it stays open.
    passport_breaker_failures: int = Field(default=5, ge=1, le=1000)
    passport_breaker_reset_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How long a ride's hold on a member's limit lives unless charged or released.
    family_hold_ttl_seconds: int = Field(default=3 * 3600, ge=60, le=7 * 86_400)
    # The rollout: families whose stable hash falls below the percentage, plus the families
    # or owners (UUIDs, comma-separated) on the allow-list.
    family_migration_percent: int = Field(default=0, ge=0, le=100)
    family_migration_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    family_migration_max_attempts: int = Field(default=5, ge=1, le=50)
    family_migration_retry_base_seconds: int = Field(default=30, ge=1, le=86_400)
    family_migration_retry_max_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)
    # A FAILED migration is scheduled again by the owner's next app start after this.
    family_migration_cooldown_seconds: int = Field(default=86_400, ge=0, le=30 * 86_400)
    family_migration_batch_size: int = Field(default=100, ge=1, le=10_000)
    # The "your family moved" screens the in-app notifications open.
    family_moved_owner_link: str = "engage://family/moved?role=owner"
    family_moved_member_link: str = "engage://family/moved?role=member"

    # Logging
    # The cyclic GC of `engage serve` and `engage worker` processes (app/interpreter.py,
    # docs/benchmarks.md): the start-up heap (modules, the schema, the pools) is frozen out
    # of collection once the process is ready, and generation thresholds suited to a server
    # that allocates many short-lived objects per request. GC_THRESHOLDS="" keeps Python's.
    gc_freeze: bool = True
    gc_thresholds: Annotated[tuple[int, ...], NoDecode] = (50_000, 20, 100)
    log_level: str = "INFO"
    log_json: bool = True

    # The edge: what the API tells strangers, and whom it believes about client addresses.
    # "Did you mean …?" in GraphQL errors; off in production (it maps the schema).
    graphql_suggestions: bool | None = None
    # Peers (IPs or CIDRs) whose X-Forwarded-For names the client: the load balancers.
    # Comma-separated, e.g. "10.0.0.0/8,127.0.0.1" (empty: none); from anyone else the
    # header is ignored.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.1",)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def outbox_mark_sent_window(self) -> float | None:
        return self.outbox_mark_sent_window_ms / 1000 if self.outbox_mark_sent_window_ms else None

    @property
    def jobs_run_in_process(self) -> bool:
        return self.jobs_in_process if self.jobs_in_process is not None else not self.redis_url

    @property
    def scheduler_runs_in_process(self) -> bool:
        if self.scheduler_in_process is not None:
            return self.scheduler_in_process
        return self.jobs_run_in_process

    @property
    def passport_configured(self) -> bool:
        return bool(self.passport_url)

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def mask_errors_enabled(self) -> bool:
        return self.mask_errors if self.mask_errors is not None else self.is_production

    @property
    def suggestions_enabled(self) -> bool:
        if self.graphql_suggestions is not None:
            return self.graphql_suggestions
        return not self.is_production

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_trusted_proxies(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return tuple(part.strip() for part in value.split(",") if part.strip())

    @field_validator("family_migration_allowlist", mode="before")
    @classmethod
    def _split_family_allowlist(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("family_migration_allowlist")
    @classmethod
    def _check_family_allowlist(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                uuid.UUID(entry)
            except ValueError:
                raise ValueError(f"not a UUID: {entry!r}") from None
        return tuple(str(uuid.UUID(entry)) for entry in value)

    @field_validator("gc_thresholds", mode="before")
    @classmethod
    def _split_gc_thresholds(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return tuple(int(part) for part in value.split(",") if part.strip())

    @field_validator("gc_thresholds")
    @classmethod
    def _check_gc_thresholds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if value and (len(value) != 3 or value[0] < 1 or min(value) < 0):
            raise ValueError("GC_THRESHOLDS takes three counts, e.g. 50000,20,100 (or empty)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError: not an IP or CIDR
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.is_production and not self.jwt_jwks_url and self.jwt_secret == DEFAULT_JWT_SECRET:
            raise ValueError(
                "ENGAGE_ENV=production refuses the default JWT_SECRET: set JWT_SECRET "
                "(32+ random bytes) or JWT_JWKS_URL"
            )
        if self.jwt_algorithm.startswith("HS") and len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters for HMAC algorithms")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
