"""Settings of the provider simulator (env prefix HEALTHMESH_SIMULATOR_)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What a run of the simulator may change; the defaults are the real providers' numbers."""

    model_config = SettingsConfigDict(env_prefix="HEALTHMESH_SIMULATOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8010
    log_level: str = "INFO"
    seed: int = Field(1, description="Same seed, same data: every value derives from it.")
    days: int = Field(400, ge=1, description="Days of history per user, ending today.")
    token_ttl_s: int | None = Field(
        None,
        ge=1,
        description="One access-token lifetime for every provider (tests); "
        "unset = each provider's real lifetime.",
    )
    auto_approve: bool = Field(
        True, description="Authorize redirects back at once; false shows an Approve page."
    )
    token_latency_s: float = Field(
        0.0, ge=0, description="Delay before each token-endpoint answer, so races really overlap."
    )
    fault_timeout_s: float = Field(
        120.0, ge=0, description="How long a `timeout` fault hangs before answering 504."
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Waiting for a webhook receiver.")

    oura_limit_5min: int = Field(5000, ge=1, description="Oura: requests per 5 minutes.")
    whoop_limit_minute: int = Field(100, ge=1, description="WHOOP: requests per minute.")
    whoop_limit_day: int = Field(10_000, ge=1, description="WHOOP: requests per day.")
    strava_limit_15min: int = Field(200, ge=1, description="Strava: requests per 15 minutes.")
    strava_limit_day: int = Field(2000, ge=1, description="Strava: requests per UTC day.")
    strava_read_limit_15min: int = Field(100, ge=1, description="Strava: reads per 15 minutes.")
    strava_read_limit_day: int = Field(1000, ge=1, description="Strava: reads per UTC day.")
    withings_limit_minute: int = Field(120, ge=1, description="Withings: requests per minute.")
    fitbit_limit_user_minute: int = Field(
        300, ge=1, description="Google Health API: requests per user per minute."
    )
