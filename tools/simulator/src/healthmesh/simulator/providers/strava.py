"""Strava (API v3): strava.md. Comma-separated scopes and the granted ones echoed in the
redirect; the code exchange embeds the athlete; a refresh returns the same access token while it
has more than an hour left; a new refresh token kills the old one at once; 6 h access tokens;
errors are `{"message", "errors": [{"resource", "field", "code"}]}` Faults (a missing scope is a
401 there, not a 403); 15-minute and daily limits reported on every answer."""

import secrets
from collections.abc import Mapping
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
from healthmesh.simulator.providers.base import (
    AuthorizeRequest,
    Provider,
    valid_redirect,
)
from healthmesh.simulator.providers.strava_data import (
    Activity,
    athlete,
    athlete_id,
    strava_day,
)
from healthmesh.simulator.ratelimit import Usage, Window
from healthmesh.simulator.responses import Answer, json_response
from healthmesh.simulator.synth import days_between, stable_int
from healthmesh.simulator.webhooks import deliver, echoed

SCOPES = (
    "read",
    "read_all",
    "profile:read_all",
    "profile:write",
    "activity:read",
    "activity:read_all",
    "activity:write",
)
API = "/api/v3"


def fault(status: int, message: str, resource: str, field: str, code: str) -> Response:
    body = {"message": message, "errors": [{"resource": resource, "field": field, "code": code}]}
    return json_response(body, status)


class Strava(Provider):
    name = "strava"
    title = "Strava"
    scope_separator = ","
    default_ttl_s = 21_600
    code_ttl_s = 600

    def policy(self, access_ttl_s: int) -> Policy:
        return Policy(
            access_ttl_s=access_ttl_s,
            code_ttl_s=self.code_ttl_s,
            rotation=Rotation.ROTATE,
            reuse_access_above_s=3600,
            code_binds_redirect=False,
        )

    def mint(self, kind: str) -> str:
        return secrets.token_hex(20)

    def identity(self, user: str) -> dict[str, Any]:
        return {**super().identity(user), "athlete_id": athlete_id(self.ctx.settings.seed, user)}

    # --- OAuth ---------------------------------------------------------------------------------

    def parse_authorize(self, params: Mapping[str, str], user: str) -> AuthorizeRequest:
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri")
        if not self.oauth.known_client(client_id):
            raise Answer(fault(400, "Bad Request", "Application", "client_id", "invalid"))
        if not valid_redirect(redirect_uri) or redirect_uri is None:
            raise Answer(fault(400, "Bad Request", "Application", "redirect_uri", "invalid"))
        if params.get("response_type") != "code":
            raise Answer(fault(400, "Bad Request", "Application", "response_type", "invalid"))
        scopes = self.split_scopes(params.get("scope")) or ("read",)
        if any(s not in SCOPES for s in scopes):
            raise Answer(fault(400, "Bad Request", "Authorize", "scope", "invalid"))
        return AuthorizeRequest(client_id, redirect_uri, scopes, params.get("state"), user)

    def approved_params(self, req: AuthorizeRequest, code: str) -> dict[str, str]:
        params = {"state": req.state or ""}
        return {**params, "code": code, "scope": self.join_scopes(req.scopes)}

    def denied_params(self, req: AuthorizeRequest) -> dict[str, str]:
        return {"state": req.state or "", "error": "access_denied"}

    def token_body(self, issued: Issued, grant_type: str) -> dict[str, Any]:
        assert issued.refresh is not None
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_at": int(issued.access.expires_at),
            "expires_in": self.expires_in(issued),
            "refresh_token": issued.refresh.value,
            "access_token": issued.access.value,
        }
        if grant_type == "authorization_code":
            body["athlete"] = athlete(self.ctx.settings.seed, issued.access.grant.user, False)
        else:
            body = {
                k: body[k]
                for k in ("token_type", "access_token", "expires_at", "expires_in", "refresh_token")
            }
        return body

    def token_error(self, error: OAuthError) -> Response:
        if error.error == "invalid_client":
            return fault(401, "Authorization Error", "Application", "", "invalid")
        if error.error == "unsupported_grant_type":
            return fault(400, "Bad Request", "RequestToken", "grant_type", "invalid")
        if "refresh" in error.description:
            return fault(400, "Bad Request", "RefreshToken", "refresh_token", "invalid")
        return fault(400, "Bad Request", "RequestToken", "code", "invalid")

    async def deauthorize(self, request: Request) -> Response:
        """Strava: revoke every token the athlete gave this application."""
        token = self.bearer(request) or (await self.fields(request)).get("access_token")
        access = self.authenticate(request, token)
        self.oauth.revoke_grant(access.grant)
        return json_response({"access_token": access.value})

    # --- refusals and limits -------------------------------------------------------------------

    def unauthorized(self, problem: TokenProblem) -> Response:
        return fault(401, "Authorization Error", "Athlete", "access_token", "invalid")

    def forbidden(self, scopes: tuple[str, ...]) -> Response:
        permission = scopes[0].split(":")[0] + ":read_permission"
        return fault(401, "Authorization Error", "AccessToken", permission, "missing")

    def rate_limited(self, headers: dict[str, str]) -> Response:
        response = fault(429, "Rate Limit Exceeded", "Application", "rate limit", "exceeded")
        response.headers.update(headers)
        return response

    def server_error(self, status: int) -> Response:
        return json_response({"message": "error", "errors": []}, status)

    def _windows(self) -> tuple[tuple[Window, ...], tuple[Window, ...]]:
        s = self.ctx.settings
        overall = (Window(s.strava_limit_15min, 900), Window(s.strava_limit_day, 86_400))
        read = (Window(s.strava_read_limit_15min, 900), Window(s.strava_read_limit_day, 86_400))
        return overall, read

    def count_request(self, request: Request, token: AccessToken) -> list[Usage]:
        overall, read = self._windows()
        client = token.grant.client_id
        usages = self.ctx.limiter.hit(f"strava:{client}", overall)
        if request.method == "GET":
            usages += self.ctx.limiter.hit(f"strava-read:{client}", read)
        return usages

    def limit_headers(self, usages: list[Usage]) -> dict[str, str]:
        """`limit,limit` and `used,used` for the 15-minute and the daily window."""

        def limits(items: list[Usage]) -> str:
            return ",".join(str(u.window.limit) for u in items)

        def used(items: list[Usage]) -> str:
            return ",".join(str(u.used) for u in items)

        headers = {"X-RateLimit-Limit": limits(usages[:2]), "X-RateLimit-Usage": used(usages[:2])}
        if len(usages) > 2:
            headers["X-ReadRateLimit-Limit"] = limits(usages[2:])
            headers["X-ReadRateLimit-Usage"] = used(usages[2:])
        return headers

    def exhausted_headers(self) -> dict[str, str]:
        overall, read = self._windows()
        limits = ",".join(str(w.limit) for w in overall)
        read_limits = ",".join(str(w.limit) for w in read)
        return {
            "X-RateLimit-Limit": limits,
            "X-RateLimit-Usage": limits,
            "X-ReadRateLimit-Limit": read_limits,
            "X-ReadRateLimit-Usage": read_limits,
        }

    async def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """`kind`: "validation" (the subscription GET with hub.challenge, which must come back
        echoed) or "event" (default): `aspect_type`, `object_type`, `object_id`, `updates`,
        `subscription_id`. Strava signs nothing."""
        url = body["url"]
        if body.get("kind") == "validation":
            challenge = secrets.token_urlsafe(16)
            params = {
                "hub.mode": "subscribe",
                "hub.challenge": challenge,
                "hub.verify_token": str(body.get("verify_token", "")),
            }
            result = await deliver(self.ctx, "GET", url, params=params)
            return {"requests": [result], "verified": echoed(result, "hub.challenge", challenge)}
        user = body["user"]
        grant = self.live_grant(user)
        owner = athlete_id(self.ctx.settings.seed, user)
        object_type = str(body.get("object_type", "activity"))
        object_id = body.get("object_id")
        if object_id is None:
            activities = self._activities(grant)
            latest = max(activities, key=lambda a: a.start) if activities else None
            object_id = owner if object_type == "athlete" or latest is None else latest.id
        payload = {
            "aspect_type": str(body.get("aspect_type", "create")),
            "event_time": int(self.now()),
            "object_id": object_id,
            "object_type": object_type,
            "owner_id": owner,
            "subscription_id": body.get("subscription_id")
            or 100_000 + stable_int(self.ctx.settings.seed, "strava-subscription") % 900_000,
            "updates": body.get("updates") or {},
        }
        headers = {"content-type": "application/json"}
        raw = orjson.dumps(payload)
        return {"requests": [await deliver(self.ctx, "POST", url, headers=headers, content=raw)]}

    # --- routes --------------------------------------------------------------------------------

    def routes(self, router: APIRouter) -> None:
        add_authorize(router, "/oauth/authorize", self)
        router.add_api_route("/oauth/token", self.oauth_token, methods=["POST"])
        router.add_api_route(f"{API}/oauth/token", self.oauth_token, methods=["POST"])
        router.add_api_route("/oauth/deauthorize", self.deauthorize, methods=["POST"])
        router.add_api_route(f"{API}/athlete", self.get_athlete)
        router.add_api_route(f"{API}/athlete/activities", self.list_activities)
        router.add_api_route(f"{API}/activities/{{activity_id}}", self.get_activity)

    def _guard(self, request: Request, scopes: tuple[str, ...]) -> Grant:
        return self.guard(
            request, scopes, token=self.bearer(request) or request.query_params.get("access_token")
        )

    def _activities(self, grant: Grant) -> list[Activity]:
        first, last = self.history(grant.user)
        seed, now = self.ctx.settings.seed, self.now()
        everything = "activity:read_all" in grant.scopes
        return [
            activity
            for day in days_between(first, last)
            for activity in strava_day(seed, grant.user, day)
            if activity.start + activity.summary["elapsed_time"] <= now
            and (everything or not activity.private)
        ]

    async def get_athlete(self, request: Request) -> Response:
        """Strava: the authenticated athlete (detailed with profile:read_all)."""
        grant = self._guard(request, ("read", "read_all", "profile:read_all"))
        detailed = "profile:read_all" in grant.scopes
        return json_response(athlete(self.ctx.settings.seed, grant.user, detailed))

    async def list_activities(self, request: Request) -> Response:
        """Strava: the athlete's activities; `before`/`after` epoch seconds, `page`/`per_page`."""
        grant = self._guard(request, ("activity:read", "activity:read_all"))
        params = request.query_params
        try:
            before = int(params["before"]) if params.get("before") else None
            after = int(params["after"]) if params.get("after") else None
            page = max(1, int(params.get("page") or 1))
            per_page = min(200, max(1, int(params.get("per_page") or 30)))
        except ValueError:
            return fault(400, "Bad Request", "Activity", "page", "invalid")
        found = [
            a
            for a in self._activities(grant)
            if (after is None or a.start > after) and (before is None or a.start < before)
        ]
        found.sort(key=lambda a: a.start, reverse=after is None)
        chunk = found[(page - 1) * per_page : page * per_page]
        return json_response([a.summary for a in chunk])

    async def get_activity(self, activity_id: str, request: Request) -> Response:
        """Strava: one activity, detailed."""
        grant = self._guard(request, ("activity:read", "activity:read_all"))
        for activity in self._activities(grant):
            if str(activity.id) == activity_id:
                return json_response(activity.detail)
        return fault(404, "Record Not Found", "Activity", "id", "invalid")
