"""Settings of the auth service (env prefix HEALTHMESH_)."""

from pydantic import Field

from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    access_token_ttl_s: int = Field(900, ge=1, description="Lifetime of an access token.")
    refresh_token_ttl_s: int = Field(
        30 * 24 * 3600, ge=60, description="Lifetime of a refresh token from its issue."
    )
