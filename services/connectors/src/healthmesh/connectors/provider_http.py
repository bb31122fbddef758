"""Calling a provider for one user: budget first, then the call, then the provider's verdict.

Every call takes its place in the provider's shared rate budget (all worker processes count in
the same PostgreSQL counters), carries the user's access token, and is retried on transient
failures with exponential backoff and full jitter. A refused token is refreshed once through the
auth service; refused again, the connection needs the user (`ReauthRequired`).
"""

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import httpx
import orjson

from healthmesh.common.logging import get_logger
from healthmesh.connectors.providers.base import (
    Call,
    HttpAnswer,
    Ok,
    Provider,
    RateLimited,
    Refused,
    Transient,
    Unauthorized,
)

log = get_logger(__name__)


class SyncStopped(Exception):
    """A sync cannot go on; `reason` is what the user sees in GET /v1/connections."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReauthRequired(SyncStopped):
    """The provider refused the connection even with a fresh token: the user must reconnect."""


class CallRefused(SyncStopped):
    """The provider refused a call for good (bad parameters, missing scope): no retry helps."""


class GaveUp(SyncStopped):
    """Transient failures outlasted every retry; the sync is tried again later."""


class Budget(Protocol):
    """The shared rate budget (see ratelimit.py)."""

    async def take(self, provider: Provider, user_id: UUID) -> None: ...

    async def observe(self, provider: Provider, user_id: UUID, used: dict[str, int]) -> None: ...

    async def pause(self, provider: Provider, user_id: UUID, seconds: float) -> None: ...


TokenSource = Callable[[str | None], Awaitable[str]]
"""Gives a working access token; called with the refused token's SHA-256 to force a refresh.
Raises ReauthRequired when the connection is gone."""


@dataclass
class CallStats:
    calls: int = 0
    rate_limited: int = 0
    retries: int = 0


@dataclass
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    attempts: int = 6
    default_rate_limit_wait_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return self.rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ProviderHttp:
    """Sends one user's calls to one provider; `send` is what the syncer drives pages with."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        provider: Provider,
        base_url: str,
        user_id: UUID,
        tokens: TokenSource,
        budget: Budget | None,
        backoff: Backoff | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._client = client
        self._provider = provider
        self._base_url = base_url.rstrip("/")
        self._user_id = user_id
        self._tokens = tokens
        self._budget = budget
        self._backoff = backoff or Backoff()
        self._timeout_s = timeout_s
        self._token: str | None = None
        self.stats = CallStats()

    async def send(self, call: Call) -> Any:
        """The decoded body of a successful answer to `call`."""
        refreshed = False
        failures = 0
        while True:
            if self._token is None:
                self._token = await self._tokens(None)
            if self._budget is not None:
                await self._budget.take(self._provider, self._user_id)
            answer = await self._call_once(call, self._token)
            verdict = self._provider.check_answer(answer) if answer else None
            if isinstance(verdict, Ok):
                return verdict.body
            if isinstance(verdict, Unauthorized):
                if refreshed:
                    raise ReauthRequired(f"{self._provider.name} refused a fresh token")
                refreshed = True
                self._token = await self._tokens(token_fingerprint(self._token))
                continue
            if isinstance(verdict, Refused):
                raise CallRefused(f"{self._provider.name} refused {call.path}: {verdict.reason}")
            if isinstance(verdict, RateLimited):
                self.stats.rate_limited += 1
                wait = verdict.retry_after_s or self._backoff.default_rate_limit_wait_s
                log.info("rate limited", provider=self._provider.name, wait_s=wait)
                if self._budget is not None:
                    await self._budget.pause(self._provider, self._user_id, wait)
                else:
                    await asyncio.sleep(wait)
                continue
            reason = verdict.reason if isinstance(verdict, Transient) else "no answer"
            failures += 1
            if failures >= self._backoff.attempts:
                raise GaveUp(f"{self._provider.name} {call.path}: {reason}")
            self.stats.retries += 1
            delay = self._backoff.delay(failures)
            log.info(
                "transient failure",
                provider=self._provider.name,
                path=call.path,
                reason=reason,
                retry_in_s=round(delay, 2),
            )
            await asyncio.sleep(delay)

    async def _call_once(self, call: Call, token: str) -> HttpAnswer | None:
        """One HTTP exchange; None when there was no answer (timeout, connection error)."""
        headers: dict[str, str] = {"Accept": "application/json"}
        params = dict(call.params)
        if self._provider.auth == "query":
            params["access_token"] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
        self.stats.calls += 1
        try:
            response = await self._client.request(
                call.method,
                f"{self._base_url}{call.path}",
                params=params,
                data=dict(call.form) if call.form is not None else None,
                content=orjson.dumps(call.json) if call.json is not None else None,
                headers=headers | ({"Content-Type": "application/json"} if call.json else {}),
                timeout=self._timeout_s,
            )
        except httpx.HTTPError as exc:
            log.info(
                "no answer", provider=self._provider.name, path=call.path, error=type(exc).__name__
            )
            return None
        if self._budget is not None:
            used = self._provider.usage_from_headers(response.headers)
            if used:
                await self._budget.observe(self._provider, self._user_id, used)
        return http_answer(response)


def http_answer(response: httpx.Response) -> HttpAnswer:
    """What a provider module's check_answer is given: the body parsed when it is JSON, the
    text kept (shortened) for error messages."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    return HttpAnswer(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        json=body,
        text=response.text[:500],
    )
