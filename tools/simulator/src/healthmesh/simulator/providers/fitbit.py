"""Fitbit = the Google Health API v4 behind Google OAuth 2.0: google_health.md.

Google OAuth: a refresh token only with `access_type=offline`, and only on the first consent
unless `prompt=consent`; refresh tokens never rotate; PKCE (S256 or plain); revoking either token
ends the grant. Errors are `google.rpc.Status` JSON. Data: dataPoints.list (newest first,
`pageSize`/`pageToken`/`nextPageToken`, an AIP-160 `filter`), dataPoints:dailyRollUp, identity.
"""

import hashlib
import secrets
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from healthmesh.simulator.authorize import add_authorize
from healthmesh.simulator.oauth import (
    AccessToken,
    Grant,
    Issued,
    OAuthError,
    Policy,
    Rotation,
    TokenProblem,
)
from healthmesh.simulator.pagination import decode_token, encode_token
from healthmesh.simulator.providers.base import (
    AuthorizeRequest,
    Provider,
    valid_redirect,
)
from healthmesh.simulator.providers.fitbit_data import (
    OTHER_TYPES,
    ROLLUP_ONLY,
    SIMULATED,
    DataType,
    Point,
    civil_date,
    google_day,
    health_user_id,
    legacy_user_id,
    offset_s,
)
from healthmesh.simulator.providers.fitbit_filter import FilterError, day_span, parse_filter
from healthmesh.simulator.ratelimit import Usage, Window
from healthmesh.simulator.responses import Answer, error_page, json_response
from healthmesh.simulator.synth import day_bounds, days_between, iso_utc, local_today
from healthmesh.simulator.webhooks import GoogleSigner, deliver

SCOPE_PREFIX = "https://www.googleapis.com/auth/googlehealth."
READ = (
    "activity_and_fitness",
    "ecg",
    "health_metrics_and_measurements",
    "irn",
    "location",
    "nutrition",
    "profile",
    "settings",
    "sleep",
)
WRITE = ("activity_and_fitness", "health_metrics_and_measurements", "location", "nutrition")
SCOPES = frozenset(
    [f"{SCOPE_PREFIX}{s}.readonly" for s in READ]
    + [f"{SCOPE_PREFIX}{s}.writeonly" for s in (*WRITE, "sleep", "profile", "settings")]
    + [
        f"{SCOPE_PREFIX}{s}"
        for s in ("activity_and_fitness", "sleep", "health_metrics_and_measurements")
    ]
    + ["openid", "email", "profile"]
    + [f"https://www.googleapis.com/auth/userinfo.{s}" for s in ("email", "profile")]
)
BASE = "/v4/users/me"
_ROLLUP = {  # data type -> (max days, aggregate of a window's point documents)
    "steps": 90,
    "distance": 90,
    "heart-rate": 14,
    "weight": 90,
    "body-fat": 90,
    "total-calories": 14,
}
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def google_error(
    code: int,
    status: str,
    message: str,
    reason: str | None = None,
    domain: str = "googleapis.com",
    headers: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        info: dict[str, Any] = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": domain,
        }
        if metadata:
            info["metadata"] = metadata
        error["details"] = [info]
    return json_response({"error": error}, code, headers)


def bad_request(reason: str, message: str, metadata: dict[str, str] | None = None) -> Answer:
    domain = "health.googleapis.com"
    return Answer(google_error(400, "INVALID_ARGUMENT", message, reason, domain, None, metadata))


def scope_url(short: str) -> str:
    return f"{SCOPE_PREFIX}{short}.readonly"


def _grants(grant: Grant, short: str) -> bool:
    return bool({scope_url(short), f"{SCOPE_PREFIX}{short}"} & set(grant.scopes))


class Fitbit(Provider):
    name = "fitbit"
    title = "Fitbit (Google Health API)"
    scope_separator = " "
    default_ttl_s = 3599
    code_ttl_s = 600

    def policy(self, access_ttl_s: int) -> Policy:
        return Policy(access_ttl_s=access_ttl_s, code_ttl_s=self.code_ttl_s, rotation=Rotation.NONE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signer = GoogleSigner()

    def mint(self, kind: str) -> str:
        prefix = {"code": "4/0A", "access": "ya29.a0", "refresh": "1//0"}[kind]
        return prefix + secrets.token_urlsafe(48 if kind == "access" else 32)

    # --- Google OAuth --------------------------------------------------------------------------

    def parse_authorize(self, params: Mapping[str, str], user: str) -> AuthorizeRequest:
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri")

        def refuse(status: int, error: str, message: str) -> Answer:
            return Answer(error_page(status, f"Error {status}: {error}", message))

        if not self.oauth.known_client(client_id):
            raise refuse(401, "invalid_client", "The OAuth client was not found.")
        if not valid_redirect(redirect_uri) or redirect_uri is None:
            raise refuse(400, "redirect_uri_mismatch", "The redirect URI is not registered.")
        if params.get("response_type") != "code":
            raise refuse(400, "invalid_request", "Invalid response_type: use code.")
        scopes = self.split_scopes(params.get("scope"))
        if not scopes:
            raise refuse(400, "invalid_request", "Missing required parameter: scope")
        if any(s not in SCOPES for s in scopes):
            raise refuse(400, "invalid_scope", "Some requested scopes were invalid.")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if challenge is not None and (method or "plain") not in ("S256", "plain"):
            raise refuse(400, "invalid_request", "Invalid code_challenge_method.")
        prompt = params.get("prompt", "").split()
        offline = params.get("access_type") == "offline" and (
            "consent" in prompt or not self.oauth.has_offline_consent(user, client_id)
        )
        return AuthorizeRequest(
            client_id,
            redirect_uri,
            scopes,
            params.get("state"),
            user,
            challenge=challenge,
            challenge_method=method if challenge else None,
            offline=offline,
        )

    def approved_params(self, req: AuthorizeRequest, code: str) -> dict[str, str]:
        params = {"state": req.state} if req.state is not None else {}
        return {**params, "code": code, "scope": self.join_scopes(req.scopes)}

    def token_body(self, issued: Issued, grant_type: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": issued.access.value,
            "expires_in": self.expires_in(issued),
        }
        if issued.rotated and issued.refresh is not None:
            body["refresh_token"] = issued.refresh.value
        body["scope"] = self.join_scopes(issued.access.grant.scopes)
        body["token_type"] = "Bearer"  # noqa: S105 - a token type, not a secret
        return body

    def token_error(self, error: OAuthError) -> Response:
        if error.error == "invalid_client":
            body = {"error": "invalid_client", "error_description": "Unauthorized"}
            return json_response(body, 401)
        if "redirect_uri" in error.description:
            return json_response(
                {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}, 400
            )
        if error.error == "invalid_grant" and "refresh" in error.description:
            description = "Token has been expired or revoked."
        else:
            description = error.description if error.error == "invalid_grant" else "Bad Request"
        return json_response({"error": error.error, "error_description": description}, 400)

    async def revoke(self, request: Request) -> Response:
        """Google: `token` (access or refresh) in the query or the form; the grant ends."""
        token = (await self.fields(request)).get("token", "")
        grant = self.oauth.find_grant(token)
        if grant is None or grant.revoked:
            return json_response(
                {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
            )
        self.oauth.revoke_grant(grant)
        return json_response({})

    # --- refusals and limits -------------------------------------------------------------------

    def unauthorized(self, problem: TokenProblem) -> Response:
        if problem is TokenProblem.MISSING:
            return google_error(401, "UNAUTHENTICATED", _MISSING, "CREDENTIALS_MISSING")
        reason = (
            "ACCESS_TOKEN_EXPIRED"
            if problem is TokenProblem.EXPIRED
            else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        )
        headers = {
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        }
        return google_error(401, "UNAUTHENTICATED", _UNAUTHENTICATED, reason, headers=headers)

    def forbidden(self, scopes: tuple[str, ...]) -> Response:
        headers = {
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
            f'error="insufficient_scope", scope="{" ".join(scopes)}"'
        }
        return google_error(
            403,
            "PERMISSION_DENIED",
            "Request had insufficient authentication scopes.",
            "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            headers=headers,
        )

    def rate_limited(self, headers: dict[str, str]) -> Response:
        body = {
            "error": {
                "code": 429,
                "message": "Quota exceeded for quota metric 'Requests per user' and limit "
                "'Requests per minute per user' of service 'health.googleapis.com'.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com",
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"subject": "user", "description": "Quota exceeded"}],
                    },
                ],
            }
        }
        return json_response(body, 429, headers)

    def server_error(self, status: int) -> Response:
        if status == 500:
            return google_error(500, "INTERNAL", "Internal error encountered.")
        return google_error(503, "UNAVAILABLE", "The service is currently unavailable.")

    def count_request(self, request: Request, token: AccessToken) -> list[Usage]:
        window = Window(self.ctx.settings.fitbit_limit_user_minute, 60)
        return self.ctx.limiter.hit(f"fitbit:{token.grant.client_id}:{token.grant.user}", (window,))

    def identity(self, user: str) -> dict[str, Any]:
        seed = self.ctx.settings.seed
        return {
            **super().identity(user),
            "healthUserId": health_user_id(seed, user),
            "legacyUserId": legacy_user_id(seed, user),
        }

    async def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """`kind`: "verification" (two POSTs of {"type": "verification"}: with the secret in
        Authorization it must answer 201, without it 401 or 403) or "event" (default): a batched
        JSON array naming `data_type`, `operation` and the changed civil `day` (default today)."""
        url = body["url"]
        secret = str(body.get("secret", "Bearer sandbox-webhook-secret"))
        json_type = {"content-type": "application/json"}
        if body.get("kind") == "verification":
            probe = b'{"type": "verification"}'
            signed = await deliver(
                self.ctx, "POST", url, headers={**json_type, "authorization": secret}, content=probe
            )
            anonymous = await deliver(self.ctx, "POST", url, headers=json_type, content=probe)
            verified = signed["status"] == 201 and anonymous["status"] in (401, 403)
            return {"requests": [signed, anonymous], "verified": verified}
        user = body["user"]
        self.live_grant(user)
        p = self.person(user)
        day = date.fromisoformat(body["day"]) if body.get("day") else local_today(self.now(), p.tz)
        start, end = day_bounds(day, p.tz)
        payload = [
            {
                "data": {
                    "version": "v4",
                    "clientProvidedSubscriptionName": str(body.get("subscription", "healthmesh")),
                    "healthUserId": health_user_id(self.ctx.settings.seed, user),
                    "operation": str(body.get("operation", "UPSERT")),
                    "dataType": str(body.get("data_type", "steps")),
                    "intervals": [
                        {
                            "civilDateTimeInterval": {
                                "startTime": f"{day.isoformat()}T00:00:00",
                                "endTime": f"{(day + timedelta(days=1)).isoformat()}T00:00:00",
                            },
                            "civilIso8601TimeInterval": f"{day}/{day + timedelta(days=1)}",
                            "physicalTimeInterval": {
                                "startTime": iso_utc(start),
                                "endTime": iso_utc(end),
                            },
                        }
                    ],
                }
            }
        ]
        raw = orjson.dumps(payload)
        headers = {
            **json_type,
            "authorization": secret,
            "X-HEALTHAPI-SIGNATURE": self.signer.sign(raw),
        }
        return {"requests": [await deliver(self.ctx, "POST", url, headers=headers, content=raw)]}

    # --- routes --------------------------------------------------------------------------------

    def routes(self, router: APIRouter) -> None:
        add_authorize(router, "/o/oauth2/v2/auth", self)
        router.add_api_route("/token", self.oauth_token, methods=["POST"])
        router.add_api_route("/revoke", self.revoke, methods=["POST", "GET"])
        router.add_api_route(f"{BASE}/identity", self.get_identity)
        router.add_api_route(f"{BASE}/settings", self.settings)
        router.add_api_route(
            f"{BASE}/dataTypes/{{data_type}}/dataPoints:dailyRollUp",
            self.daily_roll_up,
            methods=["POST"],
        )
        router.add_api_route(f"{BASE}/dataTypes/{{data_type}}/dataPoints", self.list_points)

    def _guard_data(self, request: Request, short_scope: str) -> Grant:
        grant = self.guard(request, (scope_url(short_scope), f"{SCOPE_PREFIX}{short_scope}"))
        if grant.user.startswith("unlinked"):
            raise Answer(
                google_error(
                    400,
                    "FAILED_PRECONDITION",
                    "The Google account is not linked to a Fitbit account.",
                    "ACCOUNT_NOT_LINKED",
                )
            )
        return grant

    def _data_type(self, kebab: str) -> DataType | None:
        if kebab in SIMULATED:
            return SIMULATED[kebab]
        if kebab in OTHER_TYPES:
            return None
        raise bad_request(
            "INVALID_PARENT_DATA_TYPE_COLLECTION",
            f"Invalid data type ID referenced in the parent data type collection: {kebab}",
            metadata={"dataType": kebab},
        )

    async def get_identity(self, request: Request) -> Response:
        """Google Health: who the user is (healthUserId is what webhooks carry)."""
        grant = self.guard(request, tuple(s for s in SCOPES if s.startswith(SCOPE_PREFIX)))
        ids = self.identity(grant.user)
        return json_response(
            {
                "name": "users/me/identity",
                "healthUserId": ids["healthUserId"],
                "legacyUserId": ids["legacyUserId"],
            }
        )

    async def settings(self, request: Request) -> Response:
        """Google Health: the user's settings (IANA time zone, current offset)."""
        grant = self._guard_data(request, "settings")
        p = self.person(grant.user)
        return json_response(
            {
                "name": "users/me/settings",
                "timeZone": p.tz_name,
                "utcOffset": f"{offset_s(self.now(), p.tz)}s",
            }
        )

    def _points(self, user: str, kebab: str, lo: date, hi: date) -> list[Point]:
        first, last = self.history(user)
        seed, now = self.ctx.settings.seed, self.now()
        return [
            point
            for day in days_between(max(lo, first), min(hi, last))
            for point in google_day(seed, user, day)[kebab]
            if point.at <= now
        ]

    async def list_points(self, data_type: str, request: Request) -> Response:
        """Google Health: dataPoints.list, newest first."""
        known = self._data_type(data_type)
        if data_type in ROLLUP_ONLY:
            raise bad_request(
                "INVALID_PARENT_DATA_TYPE_COLLECTION",
                f"Data type '{data_type}' does not support list; use rollUp or dailyRollUp.",
                metadata={"dataType": data_type},
            )
        grant = self._guard_data(request, known.scope if known else "activity_and_fitness")
        if known is None:
            return json_response({})
        params = request.query_params
        try:
            clauses = parse_filter(params.get("filter"), known)
        except FilterError as exc:
            raise bad_request(exc.reason, exc.message) from None
        session = known.kebab in ("sleep", "exercise")
        limit = 25 if session else 10_000
        try:
            size = min(int(params.get("pageSize") or (25 if session else 1440)), limit)
        except ValueError:
            raise bad_request("INVALID_ARGUMENT", "pageSize must be an integer.") from None
        if size < 1:
            raise bad_request("INVALID_ARGUMENT", "pageSize must be positive.")
        fingerprint = hashlib.sha256(f"{data_type}|{params.get('filter', '')}".encode()).hexdigest()
        offset = 0
        if params.get("pageToken"):
            state = decode_token(params["pageToken"])
            if state is None or state.get("f") != fingerprint[:16]:
                raise bad_request("INVALID_ARGUMENT", "Invalid page token.")
            offset = int(state["o"])
        p = self.person(grant.user)
        first, last = self.history(grant.user)
        lo, hi = day_span(clauses, p.tz, first, last)
        points = [
            pt
            for pt in self._points(grant.user, data_type, lo, hi)
            if all(c.test(pt) for c in clauses)
        ]
        points.sort(key=lambda pt: pt.start, reverse=True)
        body: dict[str, Any] = {}
        page = points[offset : offset + size]
        if page:
            body["dataPoints"] = [pt.doc for pt in page]
        if offset + size < len(points):
            body["nextPageToken"] = encode_token({"f": fingerprint[:16], "o": offset + size})
        return json_response(body)

    async def daily_roll_up(self, data_type: str, request: Request) -> Response:
        """Google Health: dataPoints:dailyRollUp over civil days (closed-open range)."""
        known = self._data_type(data_type)
        if data_type not in _ROLLUP:
            raise bad_request(
                "INVALID_ARGUMENT", f"dailyRollUp is not supported for data type '{data_type}'."
            )
        grant = self._guard_data(request, known.scope if known else "activity_and_fitness")
        try:
            body = orjson.loads(await request.body() or b"{}")
            start = date(**body["range"]["start"]["date"])
            end = date(**body["range"]["end"]["date"])
            window = int(body.get("windowSizeDays", 1))
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
            raise bad_request(
                "INVALID_ARGUMENT", "range.start.date and range.end.date are required."
            ) from None
        if window < 1 or start >= end:
            raise bad_request("INVALID_ARGUMENT", "The range must be non-empty.")
        if (end - start).days > _ROLLUP[data_type]:
            raise bad_request(
                "INVALID_ARGUMENT",
                f"The range exceeds {_ROLLUP[data_type]} days for data type '{data_type}'.",
            )
        points = self._points(grant.user, data_type, start, end)
        rows = []
        cursor = start
        while cursor < end:
            upper = min(cursor + timedelta(days=window), end)
            docs = [pt.doc for pt in points if cursor <= pt.civil_start.date() < upper]
            value = _aggregate(data_type, docs)
            if value is not None:
                rows.append(
                    {
                        "civilStartTime": {"date": civil_date(cursor)},
                        "civilEndTime": {"date": civil_date(upper)},
                        _KEYS[data_type]: value,
                    }
                )
            cursor = upper
        return json_response({"rollupDataPoints": rows} if rows else {})


_KEYS = {k: (SIMULATED[k].key if k in SIMULATED else "totalCalories") for k in _ROLLUP}


def _aggregate(data_type: str, docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not docs:
        return None
    if data_type == "steps":
        return {"countSum": str(sum(int(d["steps"]["count"]) for d in docs))}
    if data_type == "distance":
        return {"millimetersSum": str(sum(int(d["distance"]["millimeters"]) for d in docs))}
    if data_type == "heart-rate":
        bpm = [int(d["heartRate"]["beatsPerMinute"]) for d in docs]
        return {
            "beatsPerMinuteAvg": round(sum(bpm) / len(bpm), 1),
            "beatsPerMinuteMin": min(bpm),
            "beatsPerMinuteMax": max(bpm),
        }
    if data_type == "weight":
        grams = [d["weight"]["weightGrams"] for d in docs]
        return {"weightGramsAvg": round(sum(grams) / len(grams), 1)}
    if data_type == "body-fat":
        pct = [d["bodyFat"]["percentage"] for d in docs]
        return {"bodyFatPercentageAvg": round(sum(pct) / len(pct), 2)}
    return {"kcalSum": float(sum(d["kcal"] for d in docs))}
