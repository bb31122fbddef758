"""The auth service, as the connectors see it: access tokens, and reporting a dead connection.

Tokens are fetched per sync and kept only in memory; they never reach a log line.
"""

from uuid import UUID

import httpx

from healthmesh.connectors.provider_http import ReauthRequired, SyncStopped, TokenSource


class AuthUnavailable(SyncStopped):
    """Auth (or the provider's token endpoint behind it) did not answer; try again later."""


class AuthClient:
    def __init__(self, http: httpx.AsyncClient, auth_url: str, internal_token: str) -> None:
        self._http = http
        self._base = auth_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {internal_token}"}

    def token_source(self, user_id: UUID, provider: str) -> TokenSource:
        async def source(rejected_sha256: str | None) -> str:
            return await self.access_token(user_id, provider, rejected_sha256)

        return source

    async def access_token(
        self, user_id: UUID, provider: str, rejected_sha256: str | None = None
    ) -> str:
        """A working token; with `rejected_sha256` (the fingerprint of a token the provider
        refused) auth refreshes unless someone already did."""
        body = {"rejected_sha256": rejected_sha256} if rejected_sha256 else None
        response = await self._post(f"{provider}/{user_id}/token", body)
        if response.status_code == 200:
            return str(response.json()["access_token"])
        code = _error_code(response)
        if code == "reauth_required":
            raise ReauthRequired(f"the {provider} connection must be renewed")
        if code == "not_connected":
            raise SyncStopped(f"no {provider} connection")
        raise AuthUnavailable(f"auth answered {response.status_code} {code}")

    async def report_reauth(self, user_id: UUID, provider: str, reason: str) -> None:
        """The provider refuses this connection: auth marks it and tells everyone."""
        await self._post(f"{provider}/{user_id}/reauth", {"reason": reason})

    async def _post(self, path: str, body: dict[str, str] | None) -> httpx.Response:
        """One retry on a dropped connection: a pooled keep-alive connection that the server
        just closed fails without the request having been handled."""
        url = f"{self._base}/internal/v1/connections/{path}"
        for attempt in range(2):
            try:
                return await self._http.post(url, json=body, headers=self._headers, timeout=30.0)
            except httpx.RemoteProtocolError as exc:
                if attempt == 1:
                    raise AuthUnavailable(f"auth did not answer ({type(exc).__name__})") from None
            except httpx.HTTPError as exc:
                raise AuthUnavailable(f"auth did not answer ({type(exc).__name__})") from None
        raise AssertionError("unreachable")


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "unknown"
