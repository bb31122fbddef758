"""Settings of the auth service (env prefix HEALTHMESH_)."""

from pydantic import Field, model_validator

from healthmesh.common.settings import ProviderSettings

# Development-only values; refused when HEALTHMESH_ENVIRONMENT=production.
DEV_TOKEN_KEYS = "dev-1:ZGV2LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24tdXNlISE="  # noqa: S105 - dev only


class Settings(ProviderSettings):
    access_token_ttl_s: int = Field(900, ge=1, description="Lifetime of an access token.")
    refresh_token_ttl_s: int = Field(
        30 * 24 * 3600, ge=60, description="Lifetime of a refresh token from its issue."
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="The gateway's public base URL; OAuth redirect URIs are built on it.",
    )
    token_keys: str = Field(
        DEV_TOKEN_KEYS, description="Provider-token encryption keys: kid:base64(32 bytes),..."
    )
    token_active_key: str = Field("dev-1", description="Key id new ciphertexts are sealed with.")
    app_redirect_origins: list[str] = Field(
        default_factory=list,
        description="Origins an app may ask to be sent back to after connecting (exact match).",
    )
    oauth_state_ttl_s: int = 600
    refresh_margin_s: int = Field(
        300, description="Refresh an access token this long before it expires."
    )

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> "Settings":
        if self.environment == "production" and self.token_keys == DEV_TOKEN_KEYS:
            raise ValueError("set HEALTHMESH_TOKEN_KEYS to real keys in production")
        return self
