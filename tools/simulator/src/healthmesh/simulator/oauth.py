"""The OAuth2 authorization server all five providers share; their differences are a `Policy`.

Synchronous on purpose: every operation runs to completion without awaiting, and the token
endpoints hold the provider's lock around it, so concurrent refreshes are decided one at a time,
exactly as the real providers decide them.
"""

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from healthmesh.simulator.clock import Clock


class Rotation(Enum):
    NONE = "none"  # Google: the refresh token is reused for the grant's lifetime
    ROTATE = "rotate"  # Oura, WHOOP, Strava: a used refresh token is dead
    ROTATE_WITH_GRACE = "rotate_with_grace"  # Withings: dead once the new access token is used


@dataclass(frozen=True)
class Policy:
    access_ttl_s: int
    code_ttl_s: int
    rotation: Rotation
    grace_s: float = 0.0
    revoke_access_on_refresh: bool = False  # WHOOP: a refresh kills the grant's access tokens
    reuse_access_above_s: float | None = None  # Strava: refresh returns a token with > 1 h left
    code_binds_redirect: bool = True  # Strava's token request carries no redirect_uri


class OAuthError(Exception):
    """A refusal in OAuth terms; each provider words it in its own format."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class TokenProblem(Enum):
    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Unauthenticated(Exception):
    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(eq=False)
class Grant:
    """One user's consent to one client: what revocation takes back."""

    user: str
    client_id: str
    scopes: tuple[str, ...]
    revoked: bool = False
    access_tokens: list["AccessToken"] = field(default_factory=list)


@dataclass(eq=False)
class AccessToken:
    value: str
    grant: Grant
    expires_at: float
    revoked: bool = False
    predecessor: "RefreshToken | None" = None  # Withings: the refresh token this one replaced


@dataclass(eq=False)
class RefreshToken:
    value: str
    grant: Grant
    spent_at: float | None = None
    grace_until: float | None = None


@dataclass(eq=False)
class AuthCode:
    value: str
    user: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: float
    challenge: str | None = None
    challenge_method: str | None = None
    offline: bool = True
    used: bool = False


@dataclass(frozen=True)
class Issued:
    access: AccessToken
    refresh: RefreshToken | None
    rotated: bool  # False: the refresh token the client holds stays the one to use


def pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    if (method or "plain").upper() == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


class OAuthServer:
    """Codes, grants and tokens of one provider, in memory."""

    def __init__(
        self, provider: str, policy: Policy, clock: Clock, mint: Callable[[str], str]
    ) -> None:
        self.provider = provider
        self.client_id = f"sandbox-{provider}"
        self.client_secret = f"sandbox-secret-{provider}"
        self.policy = policy
        self.clock = clock
        self.mint = mint
        self.lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        self.codes: dict[str, AuthCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.grants: list[Grant] = []
        self.offline_consents: set[tuple[str, str]] = set()

    # --- clients and codes ---------------------------------------------------------------------

    def known_client(self, client_id: str | None) -> bool:
        return client_id == self.client_id

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if not self.known_client(client_id) or not hmac.compare_digest(
            (client_secret or "").encode(), self.client_secret.encode()
        ):
            raise OAuthError("invalid_client", "Client authentication failed.")

    def issue_code(
        self,
        *,
        user: str,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        challenge: str | None = None,
        challenge_method: str | None = None,
        offline: bool = True,
    ) -> AuthCode:
        code = AuthCode(
            value=self.mint("code"),
            user=user,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            expires_at=self.clock.now() + self.policy.code_ttl_s,
            challenge=challenge,
            challenge_method=challenge_method,
            offline=offline,
        )
        self.codes[code.value] = code
        return code

    def has_offline_consent(self, user: str, client_id: str) -> bool:
        return (user, client_id) in self.offline_consents

    # --- the token endpoint --------------------------------------------------------------------

    def exchange(
        self, *, client_id: str, code: str | None, redirect_uri: str | None, verifier: str | None
    ) -> Issued:
        found = self.codes.get(code or "")
        if found is None or found.used or found.client_id != client_id:
            raise OAuthError("invalid_grant", "The authorization code is invalid or already used.")
        if self.clock.now() >= found.expires_at:
            raise OAuthError("invalid_grant", "The authorization code has expired.")
        if self.policy.code_binds_redirect and redirect_uri != found.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization.")
        if found.challenge is not None:
            if not verifier:
                raise OAuthError("invalid_grant", "Missing code verifier.")
            if not pkce_matches(verifier, found.challenge, found.challenge_method):
                raise OAuthError("invalid_grant", "Invalid code verifier.")
        found.used = True
        grant = Grant(user=found.user, client_id=client_id, scopes=found.scopes)
        self.grants.append(grant)
        refresh = None
        if found.offline:
            refresh = self._new_refresh(grant)
            self.offline_consents.add((grant.user, client_id))
        return Issued(access=self._new_access(grant), refresh=refresh, rotated=True)

    def refresh(self, *, client_id: str, refresh_token: str | None) -> Issued:
        now = self.clock.now()
        old = self.refresh_tokens.get(refresh_token or "")
        if old is None or old.grant.client_id != client_id or old.grant.revoked:
            raise OAuthError("invalid_grant", "The refresh token is invalid or revoked.")
        if old.spent_at is not None and not (old.grace_until and now < old.grace_until):
            raise OAuthError("invalid_grant", "The refresh token was already used.")
        grant = old.grant
        if self.policy.reuse_access_above_s is not None:
            live = [t for t in grant.access_tokens if not t.revoked and t.expires_at > now]
            if live and live[-1].expires_at - now > self.policy.reuse_access_above_s:
                return Issued(access=live[-1], refresh=old, rotated=False)
        if self.policy.revoke_access_on_refresh:
            for token in grant.access_tokens:
                token.revoked = True
        if self.policy.rotation is Rotation.NONE:
            return Issued(access=self._new_access(grant), refresh=old, rotated=False)
        if old.spent_at is None:
            old.spent_at = now
            if self.policy.rotation is Rotation.ROTATE_WITH_GRACE:
                old.grace_until = now + self.policy.grace_s
        access = self._new_access(grant)
        if self.policy.rotation is Rotation.ROTATE_WITH_GRACE:
            access.predecessor = old
        return Issued(access=access, refresh=self._new_refresh(grant), rotated=True)

    def _new_access(self, grant: Grant) -> AccessToken:
        token = AccessToken(
            value=self.mint("access"),
            grant=grant,
            expires_at=self.clock.now() + self.policy.access_ttl_s,
        )
        self.access[token.value] = token
        grant.access_tokens.append(token)
        return token

    def _new_refresh(self, grant: Grant) -> RefreshToken:
        token = RefreshToken(value=self.mint("refresh"), grant=grant)
        self.refresh_tokens[token.value] = token
        return token

    # --- resource servers ----------------------------------------------------------------------

    def authenticate(self, value: str | None) -> AccessToken:
        """The live access token `value`, or why not. Its first use ends a Withings grace."""
        if not value:
            raise Unauthenticated(TokenProblem.MISSING)
        token = self.access.get(value)
        if token is None:
            raise Unauthenticated(TokenProblem.UNKNOWN)
        if token.revoked or token.grant.revoked:
            raise Unauthenticated(TokenProblem.REVOKED)
        now = self.clock.now()
        if now >= token.expires_at:
            raise Unauthenticated(TokenProblem.EXPIRED)
        old = token.predecessor
        if old is not None and old.grace_until is not None and old.grace_until > now:
            old.grace_until = now
        return token

    # --- revocation ----------------------------------------------------------------------------

    def find_grant(self, token: str) -> Grant | None:
        if token in self.access:
            return self.access[token].grant
        if token in self.refresh_tokens:
            return self.refresh_tokens[token].grant
        return None

    def revoke_grant(self, grant: Grant) -> None:
        grant.revoked = True
        if not any(
            g.user == grant.user and g.client_id == grant.client_id and not g.revoked
            for g in self.grants
        ):
            self.offline_consents.discard((grant.user, grant.client_id))

    def revoke_user(self, user: str) -> int:
        """The user took access back at the provider: every grant of theirs dies."""
        grants = [g for g in self.grants if g.user == user and not g.revoked]
        for grant in grants:
            self.revoke_grant(grant)
        return len(grants)

    def live_grant(self, user: str) -> Grant | None:
        for grant in reversed(self.grants):
            if grant.user == user and not grant.revoked:
                return grant
        return None
