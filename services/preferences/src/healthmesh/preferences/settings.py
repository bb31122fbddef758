"""Settings of the preferences service (env prefix HEALTHMESH_)."""

from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    """Only the shared settings: the database, and auth_url for the JWKS that verifies tokens."""

    @property
    def jwks_url(self) -> str:
        return f"{self.auth_url.rstrip('/')}/.well-known/jwks.json"
