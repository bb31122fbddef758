"""Settings every service reads from its environment; each service extends `CommonSettings`."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from healthmesh.common.apple_export import ArchiveLimits

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:54329/healthmesh"
DEFAULT_KAFKA = "127.0.0.1:9092"
DEV_INTERNAL_TOKEN = "dev-internal-token"  # noqa: S105 - a placeholder refused in production

SERVICE_PORTS = {
    "gateway": 8000,
    "auth": 8001,
    "connectors": 8002,
    "normalizer": 8003,
    "preferences": 8004,
}


class CommonSettings(BaseSettings):
    """Connection points and switches shared by all services (env prefix HEALTHMESH_)."""

    model_config = SettingsConfigDict(env_prefix="HEALTHMESH_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "HEALTHMESH_DATABASE_URL"),
    )
    kafka_bootstrap_servers: str = Field(
        DEFAULT_KAFKA,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "HEALTHMESH_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    topic_prefix: str = Field(
        "", description="Prepended to every topic name (shared clusters, tests)."
    )
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = Field(
        1,
        ge=1,
        description="HTTP worker processes; more than one lets a CPU-bound service (the gateway "
        "answering queries) use more than one core.",
    )
    auth_url: str = f"http://127.0.0.1:{SERVICE_PORTS['auth']}"
    preferences_url: str = f"http://127.0.0.1:{SERVICE_PORTS['preferences']}"
    connectors_url: str = f"http://127.0.0.1:{SERVICE_PORTS['connectors']}"
    upload_dir: Path = Path(".data/uploads")
    export_max_unzipped_bytes: int = Field(
        16 * 1024**3, gt=0, description="Largest export.xml an Apple Health zip may expand to."
    )
    export_max_zip_ratio: int = Field(
        200, gt=0, description="Largest expansion of any zip entry (real exports: ~20x)."
    )
    log_level: str = "INFO"
    internal_token: str = Field(
        DEV_INTERNAL_TOKEN,
        description="Shared secret services present to each other's /internal/* endpoints.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "HEALTHMESH_OTLP_ENDPOINT"),
    )

    @property
    def archive_limits(self) -> ArchiveLimits:
        return ArchiveLimits(
            max_uncompressed_bytes=self.export_max_unzipped_bytes,
            max_ratio=self.export_max_zip_ratio,
        )

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> "CommonSettings":
        if self.environment == "production" and self.database_url == DEFAULT_DATABASE_URL:
            raise ValueError("DATABASE_URL must be set explicitly in production")
        if self.environment == "production" and self.internal_token == DEV_INTERNAL_TOKEN:
            raise ValueError("HEALTHMESH_INTERNAL_TOKEN must be set to a real secret in production")
        return self


PROVIDERS = ("oura", "whoop", "fitbit", "withings", "strava")


class ProviderSettings(CommonSettings):
    """Provider app credentials, read by auth (OAuth) and connectors (webhook signatures)."""

    provider_base_url: str | None = Field(
        None,
        description="Sandbox: serve every provider from {base}/{provider}{real path} "
        "(the provider simulator) instead of the real hosts.",
    )
    oura_client_id: str | None = None
    oura_client_secret: str | None = None
    whoop_client_id: str | None = None
    whoop_client_secret: str | None = None
    fitbit_client_id: str | None = None
    fitbit_client_secret: str | None = None
    withings_client_id: str | None = None
    withings_client_secret: str | None = None
    strava_client_id: str | None = None
    strava_client_secret: str | None = None

    def credentials(self, provider: str) -> tuple[str, str] | None:
        """(client id, client secret): configured ones, or the simulator's in sandbox mode."""
        client_id = getattr(self, f"{provider}_client_id")
        client_secret = getattr(self, f"{provider}_client_secret")
        if client_id and client_secret:
            return client_id, client_secret
        if self.provider_base_url:
            return f"sandbox-{provider}", f"sandbox-secret-{provider}"
        return None
