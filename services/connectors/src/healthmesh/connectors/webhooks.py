"""Provider webhooks: verified by the provider's own module, then turned into targeted syncs.

Unverified calls are refused (401/403) and logged without their body. A verified notification
for a user we do not know is acknowledged (the provider would retry forever otherwise) and
logged. A revoked grant marks the connection reauth_required through auth when the provider
signs its webhooks; an unsigned one (Strava) only queues a sync, whose refused token proves it.
Likewise a signed deletion is published as a tombstone on `raw.<provider>` (a sync cannot see a
deleted record, so its samples would stay forever), and answered only once the broker
acknowledged it: a 503 makes the provider deliver it again.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
from faststream.kafka import KafkaBroker
from pydantic import JsonValue

from healthmesh.common.broker import PublishFailed, publish_many
from healthmesh.common.events import RawPayloadReceived, dump
from healthmesh.common.ids import raw_event_id
from healthmesh.common.logging import get_logger
from healthmesh.common.topics import Topics
from healthmesh.connectors import jobs
from healthmesh.connectors.providers.base import (
    Challenge,
    Deletion,
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
TOMBSTONE = "deleted"
"""The raw resource of a record the provider deleted; its payload names the record."""


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
    broker: KafkaBroker,
    topics: Topics,
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
            if notice.deleted is not None and provider.signed_webhooks:
                tombstone = deletion_event(provider.name, user_id, notice.deleted, now)
                try:
                    await publish_many(
                        broker, topics.raw(provider.name), str(user_id).encode(), [dump(tombstone)]
                    )
                except PublishFailed as exc:
                    log.warning("tombstone not published", provider=provider.name, error=str(exc))
                    return WebhookAnswer(
                        503, {"error": {"code": "unavailable", "message": "try again later"}}
                    )
                log.info(
                    "webhook published a tombstone",
                    provider=provider.name,
                    resource=notice.deleted.resource,
                    raw_event_id=str(tombstone.id),
                )
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


def deletion_event(
    provider: str, user_id: UUID, deletion: Deletion, fetched_at: datetime
) -> RawPayloadReceived:
    """The tombstone of one deleted record. Its id depends on the record only, so a redelivered
    notification is the same event."""
    return RawPayloadReceived(
        id=raw_event_id(provider, user_id, TOMBSTONE, f"{deletion.resource}:{deletion.record_id}"),
        user_id=user_id,
        source=provider,
        resource=TOMBSTONE,
        fetched_at=fetched_at,
        payload={
            "resource": deletion.resource,
            "id": deletion.record_id,
            "event": deletion.event,
        },
    )
