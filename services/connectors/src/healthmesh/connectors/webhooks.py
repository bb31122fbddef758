"""Provider webhooks: verified by the provider's own module, then turned into targeted syncs.

Unverified calls are refused (401/403) and logged without their body. A verified notification
for a user we do not know is acknowledged (the provider would retry forever otherwise) and
logged. A revoked grant marks the connection reauth_required through auth when the provider
signs its webhooks; an unsigned one (Strava) only queues a sync, whose refused token proves it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from pydantic import JsonValue

from healthmesh.common.logging import get_logger
from healthmesh.connectors import jobs
from healthmesh.connectors.providers.base import (
    Challenge,
    Provider,
    WebhookRefused,
    WebhookRequest,
    WebhookSecrets,
)
from healthmesh.connectors.settings import Settings
from healthmesh.connectors.tokens import AuthClient

log = get_logger(__name__)

NOTICE_LOOKBACK = timedelta(days=1)
"""A notification without a time range re-syncs the last day of its resources."""


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: JsonValue


class WebhookSecretsSource:
    """Each provider's verification material from the settings; in sandbox mode the Google
    signing key is fetched once from the simulator."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._fitbit_key = settings.fitbit_webhook_public_key_pem

    async def for_provider(self, provider: str) -> WebhookSecrets:
        pair = self._settings.credentials(provider)
        if provider == "fitbit" and self._fitbit_key is None and self._settings.provider_base_url:
            base = self._settings.provider_base_url.rstrip("/")
            url = f"{base}/_control/webhooks/fitbit/public-key"
            try:
                response = await self._http.get(url, timeout=10.0)
                if response.status_code == 200:
                    self._fitbit_key = response.text
            except httpx.HTTPError:
                log.warning("sandbox webhook key unavailable")
        return WebhookSecrets(
            client_secret=pair[1] if pair else None,
            verify_token=self._settings.webhook_verify_token,
            authorization=self._settings.fitbit_webhook_authorization,
            public_key_pem=self._fitbit_key if provider == "fitbit" else None,
        )


async def receive(
    provider: Provider,
    request: WebhookRequest,
    secrets: WebhookSecrets,
    pool: asyncpg.Pool,
    auth: AuthClient,
) -> WebhookAnswer:
    try:
        outcome = provider.verify_webhook(request, secrets)
    except WebhookRefused as refused:
        log.warning(
            "webhook refused", provider=provider.name, status=refused.status, reason=refused.reason
        )
        return WebhookAnswer(
            refused.status, {"error": {"code": "webhook_refused", "message": refused.reason}}
        )
    if isinstance(outcome, Challenge):
        log.info("webhook handshake answered", provider=provider.name)
        return WebhookAnswer(outcome.status, outcome.body)
    now = datetime.now(UTC)
    for notice in outcome.items:
        users = await jobs.users_of_provider_user(pool, provider.name, notice.provider_user_id)
        if not users:
            log.info("webhook for an unknown provider user", provider=provider.name)
        for user_id in users:
            if notice.deauthorized and provider.signed_webhooks:
                await auth.report_reauth(user_id, provider.name, "access revoked at the provider")
                continue
            sync_id = await jobs.request_sync(
                pool,
                user_id,
                provider.name,
                "webhook",
                min(notice.start or now, now) - NOTICE_LOOKBACK,
                None,
                list(notice.resources) if notice.resources is not None else None,
            )
            log.info("webhook queued a sync", provider=provider.name, sync_id=str(sync_id))
    return WebhookAnswer(outcome.status, None)
