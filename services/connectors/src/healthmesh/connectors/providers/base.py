"""What a provider module declares, so the generic sync machinery can drive it.

A provider module (`oura.py`, `whoop.py`, ...) builds one `Provider`: its resources (how to ask
for a window of data, how to read a page and find the next one), its rate limits, how it signals
errors (`check_answer`), and how to verify its webhooks. Every quirk of a provider stays in its
module; nothing here knows a provider by name.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import JsonValue

# --- calls and answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One HTTP request to a provider: the real path, appended to the provider's base URL."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    method: Literal["GET", "POST"] = "GET"
    form: Mapping[str, str] | None = None
    """Form-encoded body (Withings takes its parameters this way)."""
    json: JsonValue = None
    """JSON body (Google's `:dailyRollUp`)."""


@dataclass(frozen=True)
class Ok:
    body: Any
    """The decoded JSON of a successful answer."""


@dataclass(frozen=True)
class Unauthorized:
    """The access token was refused: refresh it once, then the user must reconnect."""

    reason: str


@dataclass(frozen=True)
class RateLimited:
    retry_after_s: float | None
    """How long the provider asked us to wait, when it said so."""


@dataclass(frozen=True)
class Transient:
    """Worth retrying after a backoff: 5xx, a gateway timeout, a malformed or truncated body."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """A permanent refusal of this call (bad parameters, missing scope, account not linked)."""

    reason: str


Answer = Ok | Unauthorized | RateLimited | Transient | Refused


@dataclass(frozen=True)
class HttpAnswer:
    """The parts of an HTTP response a provider module reads; `json` is None when the body is
    not valid JSON."""

    status: int
    headers: Mapping[str, str]
    json: Any
    text: str


# --- resources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One raw event to publish: a document as received, or the rows of a time series that
    share a key (their UTC day), which the syncer groups into one payload."""

    key: str
    """Natural key within the resource: the document's id, or the UTC day of a series row."""
    payload: JsonValue
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next: Call | None
    """The call for the next page of the same window, or None when the window is exhausted."""


class MalformedPage(ValueError):
    """The answer parsed as JSON but is not the shape the provider documents."""


@dataclass(frozen=True)
class Resource:
    """One listing endpoint of a provider, as the sync machinery drives it.

    The syncer cuts [start, end) into windows of at most `max_window` (aligned to UTC days),
    calls `first_call(start, end)`, then follows `Page.next` until it is None.
    """

    name: str
    first_call: Callable[[datetime, datetime], Call]
    read_page: Callable[[Any, Call], Page]
    """From the decoded body of one answer (and the call that produced it) to its items and
    the next call. Raises MalformedPage when the body is not the documented shape."""
    max_window: timedelta = timedelta(days=365)
    """The widest range one listing may span (provider limit, or what keeps pages few)."""
    overlap: timedelta = timedelta(days=2)
    """Incremental syncs re-read this much before the cursor, for late or re-scored data."""
    series: Callable[[list[JsonValue]], JsonValue] | None = None
    """For time series: items sharing a key are published as one payload built by this."""
    page_size: int | None = None
    """Most items one page can hold at the provider's largest page size (None: one answer
    holds the whole window). With `max_window` at the provider's widest range, this gives the
    fewest calls a window can cost: the yardstick the sync reports its calls against."""
    ends_on_empty_page: bool = False
    """The provider signals the end only with an empty page (Strava): one more call a window."""


# --- rate limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A provider's request budget: `capacity` calls per `seconds`, in windows aligned to the
    epoch (as Strava resets at :00/:15/:30/:45 and midnight UTC), per user or per application."""

    name: str
    capacity: int
    seconds: int
    per_user: bool = False


# --- webhooks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-case header names."""
    body: bytes


@dataclass(frozen=True)
class WebhookSecrets:
    """What this deployment verifies webhooks with; None when not configured."""

    client_secret: str | None
    verify_token: str | None
    """Strava's `hub.verify_token`, Oura's `verification_token`: chosen when subscribing."""
    authorization: str | None
    """Google: the exact `Authorization` value given when creating the subscriber."""
    public_key_pem: str | None
    """Google: the key behind `X-HEALTHAPI-SIGNATURE`."""


@dataclass(frozen=True)
class Challenge:
    """A verification handshake: answer this body with this status, trigger nothing."""

    status: int
    body: JsonValue


@dataclass(frozen=True)
class Deletion:
    """One record the provider says it deleted. A sync cannot see what is gone, so a signed
    deletion is published as a tombstone (resource "deleted") for the normalizer instead."""

    resource: str
    """The connector's name for the record's resource."""
    record_id: str
    """The provider's id of the record, as the event names it."""
    event: JsonValue
    """The provider's event as received, kept in the tombstone."""


@dataclass(frozen=True)
class Notice:
    """A verified notification: sync these resources of this provider user around this time."""

    provider_user_id: str
    resources: tuple[str, ...] | None = None
    """None: every resource."""
    start: datetime | None = None
    end: datetime | None = None
    deauthorized: bool = False
    """The user revoked our access at the provider."""
    deleted: Deletion | None = None
    """The notification says this record was deleted: a signed one becomes a tombstone, not a
    sync; an unsigned one (never trusted on its word) still only queues the sync above."""


@dataclass(frozen=True)
class Notices:
    items: list[Notice]
    status: int = 200


class WebhookRefused(Exception):
    """Unverified or unreadable webhook call; answered with `status` and logged."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- the provider ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Where a provider says who the user is, for those whose token answer does not (Oura,
    WHOOP, Google): their webhooks name users by this id."""

    call: Call
    read: Callable[[Any], str]


@dataclass(frozen=True)
class Provider:
    name: str
    resources: tuple[Resource, ...]
    limits: tuple[Limit, ...]
    check_answer: Callable[[HttpAnswer], Answer]
    """The provider's own conventions for success and errors (Withings: HTTP 200 + status)."""
    usage_from_headers: Callable[[Mapping[str, str]], dict[str, int]]
    """Calls already used in each limit's current window, as the provider reports it."""
    verify_webhook: Callable[[WebhookRequest, WebhookSecrets], Challenge | Notices]
    """Verify and read a webhook call; raises WebhookRefused."""
    auth: Literal["bearer", "query"] = "bearer"
    signed_webhooks: bool = True
    """False (Strava, Withings sign nothing): a deauthorization notice is checked by a sync
    (a revoked grant answers 401, then the refresh fails), never trusted on its word."""
    identity: Identity | None = None

    def resource(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)


# --- small helpers provider modules share ------------------------------------------------------


def no_usage_headers(headers: Mapping[str, str]) -> dict[str, int]:
    """For providers that report no usage in their headers."""
    return {}


def dates_of(start: datetime, end: datetime, pad_days: int = 1) -> tuple[date, date]:
    """Inclusive local-date range covering UTC [start, end), padded by `pad_days` on each side
    so any user's local day that overlaps the window is asked for (ids make overlaps free)."""
    first = (start - timedelta(days=pad_days)).astimezone(UTC).date()
    last = (end - timedelta(microseconds=1) + timedelta(days=pad_days)).astimezone(UTC).date()
    return first, last


def utc_moment(value: Any, what: str) -> datetime:
    """An ISO 8601 time from a provider's document, in UTC (one without a zone is taken as UTC);
    anything else is a malformed page."""
    if not isinstance(value, str):
        raise MalformedPage(f"{what}: expected an ISO 8601 time, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedPage(f"{what}: not an ISO 8601 time: {value!r}") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
