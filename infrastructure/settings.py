"""All configuration, from ``BULK_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "BULK_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigurationError(Exception):
    """Settings that cannot work together (a store chosen without its address)."""


class LogSettings(BaseSettings):
    """What a process reads first: it sets up logging before anything else is read."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    log_level: LogLevel = "WARNING"
    # json: one JSON object per line (action_id, chunk_no, process, level, message).
    log_format: Literal["text", "json"] = "text"


class Settings(LogSettings):
    data_dir: Path = Field(default=Path(".bulkactions"), description="where embedded state lives")
    event_store: Literal["sqlite", "postgres"] = "sqlite"
    postgres_dsn: str | None = None
    document_store: Literal["sqlite", "mongodb"] = "sqlite"
    mongodb_uri: str | None = None
    mongodb_database: str = "bulkactions"
    transport: Literal["inprocess", "rabbitmq"] = "inprocess"
    rabbitmq_url: str | None = None
    rabbitmq_prefetch: int = Field(default=4, ge=1, le=1000)
    postgres_pool_size: int = Field(default=5, ge=1)

    workers: int = Field(default=2, ge=1, le=64)
    worker_processes: int = Field(
        default=1,
        ge=0,
        le=64,
        description="embedded default: how many of the workers process chunks in a child process of their own",
    )
    delivery_limit: int = Field(default=5, ge=1)
    records_per_day: int = Field(default=100_000_000, ge=1)
    max_active_actions: int = Field(default=50, ge=1)
    requests_per_minute: int = Field(default=600, ge=1, description="default per-account API request rate")
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1, description="largest accepted request body (413 above)")
    metrics_dir: Path | None = Field(
        default=None,
        description="where serve's processes write the metrics /metrics adds up (default: under the temp dir)",
    )
    metrics: bool = Field(
        default=False, description="record Prometheus metrics (turned on by serve and by --metrics-port)"
    )

    # Completion webhooks (application/webhooks.py): the wait before attempt n + 1 is
    # base * 2**(n - 1), at most max, and attempts go on until retry_for after the
    # action finished (one last attempt at that moment). Tests shorten them.
    webhook_backoff_base_seconds: float = Field(default=30.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_for_seconds: float = Field(default=24 * 3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Loopback and private addresses are refused as callback URLs unless this is set.
    webhook_allow_private: bool = False


def settings_problem(error: ValidationError) -> str | None:
    """One line naming each bad ``BULK_*`` variable and why, or None if ``error`` is not
    about these settings."""
    if error.title not in {LogSettings.__name__, Settings.__name__}:
        return None
    return "; ".join(
        f"{PREFIX}{'_'.join(str(part) for part in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
        for e in error.errors()
    )
