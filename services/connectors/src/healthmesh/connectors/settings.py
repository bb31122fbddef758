from pydantic import Field

from healthmesh.common.settings import ProviderSettings


class Settings(ProviderSettings):
    importer_group: str = "connectors-importers"
    import_batch_rows: int = 500
    import_batch_records: int = 2000
    """Apple Health items per raw batch (cut earlier at import_batch_bytes)."""
    import_batch_bytes: int = 256 * 1024
    """Raw batches stay far below Kafka's 1 MB message limit."""

    links_group: str = "connectors-links"
    sync_concurrency: int = Field(8, ge=0, description="Syncs this process runs at once.")
    sync_interval_s: float = Field(
        3600, gt=0, description="Each connection is synced incrementally this often (±20 %)."
    )
    schedule_tick_s: float = Field(15, gt=0, description="How often the scheduler looks.")
    backfill_days: int = Field(365, ge=1, description="History pulled when a provider connects.")
    sync_lease_s: float = Field(60, gt=0, description="A dead worker's job resumes after this.")
    sync_max_attempts: int = Field(
        5, ge=1, description="Tries of a failing sync before waiting for the next scheduled one."
    )
    sync_retry_base_s: float = Field(30, ge=0, description="First retry delay; doubles.")
    provider_timeout_s: float = Field(30, gt=0, description="Per provider call.")
    provider_retry_base_s: float = Field(
        0.5, ge=0, description="Backoff on 5xx/timeouts: full jitter up to base * 2^attempt."
    )
    provider_retry_cap_s: float = Field(30, ge=0, description="Longest backoff between tries.")
    provider_retry_attempts: int = Field(6, ge=1, description="Tries of one call.")
    provider_rate_limit_wait_s: float = Field(
        60, ge=0, description="Pause after a 429 that says nothing of when to come back."
    )
    rate_limit_scale: float = Field(
        1.0,
        gt=0,
        description="Multiplies every provider limit (only for simulators with "
        "raised limits; the real providers' limits are the defaults).",
    )
    webhook_verify_token: str | None = Field(
        None,
        description="Token given to Strava (hub.verify_token) and Oura "
        "(verification_token) when subscribing; handshakes are refused without it.",
    )
    fitbit_webhook_authorization: str | None = Field(
        None, description="Google Health: the Authorization value set on the subscriber."
    )
    fitbit_webhook_public_key_pem: str | None = Field(
        None,
        description="Google Health: the key verifying X-HEALTHAPI-SIGNATURE. In sandbox "
        "mode it is fetched from the simulator when unset.",
    )
