"""All configuration, from ``BULK_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BULK_", extra="ignore")

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

    chunk_size: int = Field(default=1000, ge=1, le=10_000)
    workers: int = Field(default=2, ge=1, le=64)
    delivery_limit: int = Field(default=5, ge=1)
    records_per_day: int = Field(default=100_000_000, ge=1)
    max_active_actions: int = Field(default=50, ge=1)
    requests_per_minute: int = Field(default=600, ge=1, description="default per-account API request rate")
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1, description="largest accepted request body (413 above)")
