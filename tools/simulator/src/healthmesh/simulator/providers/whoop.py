"""WHOOP (developer API v2): whoop.md. Its OAuth server is Ory Hydra: `state` must be exactly 8
characters, a refresh token only with the `offline` scope, single-use refresh tokens (the second of
two concurrent refreshes fails) and a refresh kills the grant's access tokens. Data under
/developer/v2, newest first, `limit` <= 25, `nextToken` in, `next_token` out."""

import uuid
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from healthmesh.simulator.authorize import add_authorize
from healthmesh.simulator.oauth import (
    AccessToken,
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
    RedirectError,
    valid_redirect,
)
from healthmesh.simulator.providers.whoop_data import (
    Rec,
    as_of,
    day_of_cycle,
    parse_time,
    whoop_day,
    whoop_user_id,
)
from healthmesh.simulator.ratelimit import Usage, Window
from healthmesh.simulator.responses import Answer, error_page, json_response
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.webhooks import deliver, whoop_signature

SCOPES = (
    "offline",
    "read:recovery",
    "read:cycles",
    "read:workout",
    "read:sleep",
    "read:profile",
    "read:body_measurement",
)
KINDS = {  # collection -> (WhoopDay attribute, scope)
    "cycle": ("cycle", "read:cycles"),
    "recovery": ("recovery", "read:recovery"),
    "activity/sleep": ("sleep", "read:sleep"),
    "activity/workout": ("workout", "read:workout"),
}
BASE = "/developer/v2"
_HYDRA_GRANT = (
    "The provided authorization grant (e.g., authorization code, resource owner credentials) or "
    "refresh token is invalid, expired, revoked, does not match the redirection URI used in the "
    "authorization request, or was issued to another client."
)


def _bad_request(message: str) -> Response:
    return json_response({"message": message}, 400)


class Whoop(Provider):
    name = "whoop"
    title = "WHOOP"
    scope_separator = " "
    default_ttl_s = 3600
    code_ttl_s = 600

    def policy(self, access_ttl_s: int) -> Policy:
        return Policy(
            access_ttl_s=access_ttl_s,
            code_ttl_s=self.code_ttl_s,
            rotation=Rotation.ROTATE,
            revoke_access_on_refresh=True,
        )

    # --- OAuth ---------------------------------------------------------------------------------

    def parse_authorize(self, params: Mapping[str, str], user: str) -> AuthorizeRequest:
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri")
        if not self.oauth.known_client(client_id):
            raise Answer(error_page(401, "invalid_client", "Client authentication failed."))
        if not valid_redirect(redirect_uri) or redirect_uri is None:
            raise Answer(error_page(400, "invalid_request", "The redirect_uri is not allowed."))
        state = params.get("state")
        if params.get("response_type") != "code":
            raise RedirectError(
                redirect_uri, state, "unsupported_response_type", "Only 'code' is supported."
            )
        if state is None or len(state) != 8:
            raise RedirectError(
                redirect_uri,
                state,
                "invalid_state",
                "The state is missing or does not have enough characters and is therefore "
                "considered too weak. Request parameter 'state' must be exactly 8 characters.",
            )
        scopes = self.split_scopes(params.get("scope"))
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise RedirectError(
                redirect_uri,
                state,
                "invalid_scope",
                f"The requested scope is invalid, unknown, or malformed. The OAuth 2.0 Client "
                f"is not allowed to request scope '{unknown[0]}'.",
            )
        return AuthorizeRequest(
            client_id, redirect_uri, scopes, state, user, offline="offline" in scopes
        )

    def token_body(self, issued: Issued, grant_type: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": issued.access.value,
            "expires_in": self.expires_in(issued),
        }
        if issued.refresh is not None:
            body["refresh_token"] = issued.refresh.value
        body["scope"] = self.join_scopes(issued.access.grant.scopes)
        body["token_type"] = "bearer"  # noqa: S105 - a token type, not a secret
        return body

    def token_error(self, error: OAuthError) -> Response:
        if error.error == "invalid_client":
            description = (
                "Client authentication failed (e.g., unknown client, no client authentication "
                "included, or unsupported authentication method)."
            )
            return json_response({"error": "invalid_client", "error_description": description}, 401)
        description = _HYDRA_GRANT if error.error == "invalid_grant" else error.description
        return json_response(
            {
                "error": error.error,
                "error_description": description,
                "error_hint": error.description,
            },
            400,
        )

    # --- refusals and limits -------------------------------------------------------------------

    def unauthorized(self, problem: TokenProblem) -> Response:
        return json_response({"message": "Authorization was not valid"}, 401)

    def forbidden(self, scopes: tuple[str, ...]) -> Response:
        return json_response({"message": f"Missing required scope: {scopes[0]}"}, 403)

    def rate_limited(self, headers: dict[str, str]) -> Response:
        return json_response({"message": "Too Many Requests"}, 429, headers)

    def windows(self) -> tuple[Window, ...]:
        settings = self.ctx.settings
        return (Window(settings.whoop_limit_minute, 60), Window(settings.whoop_limit_day, 86_400))

    def count_request(self, request: Request, token: AccessToken) -> list[Usage]:
        return self.ctx.limiter.hit(f"whoop:{token.grant.client_id}", self.windows())

    def limit_headers(self, usages: list[Usage]) -> dict[str, str]:
        """IETF RateLimit draft style, as WHOOP documents it."""
        closest = min(usages, key=lambda u: u.remaining)
        policies = ", ".join(f"{u.window.limit};window={u.window.seconds}" for u in usages)
        return {
            "X-RateLimit-Limit": f"{closest.window.limit}, {policies}",
            "X-RateLimit-Remaining": str(closest.remaining),
            "X-RateLimit-Reset": str(closest.reset_in),
        }

    def exhausted_headers(self) -> dict[str, str]:
        minute, day = self.windows()
        return {
            "X-RateLimit-Limit": f"{minute.limit}, {minute.limit};window=60, "
            f"{day.limit};window=86400",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "60",
        }

    def identity(self, user: str) -> dict[str, Any]:
        return {**super().identity(user), "user_id": whoop_user_id(self.ctx.settings.seed, user)}

    async def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """`type` (default "recovery.updated") and `id` (default: the latest matching record:
        for sleep and recovery the sleep UUID, as in v2), signed with the client secret."""
        user = body["user"]
        self.live_grant(user)
        event = str(body.get("type", "recovery.updated"))
        record_id = body.get("id")
        if record_id is None:
            kind = "activity/workout" if event.startswith("workout") else "activity/sleep"
            records = self._records(user, kind)
            record_id = records[0].doc["id"] if records else str(uuid.uuid4())
        payload = {
            "user_id": whoop_user_id(self.ctx.settings.seed, user),
            "id": record_id,
            "type": event,
            "trace_id": str(uuid.uuid4()),
        }
        raw = orjson.dumps(payload)
        timestamp = str(int(self.now() * 1000))
        headers = {
            "content-type": "application/json",
            "X-WHOOP-Signature": whoop_signature(self.oauth.client_secret, timestamp, raw),
            "X-WHOOP-Signature-Timestamp": timestamp,
        }
        return {
            "requests": [await deliver(self.ctx, "POST", body["url"], headers=headers, content=raw)]
        }

    # --- routes --------------------------------------------------------------------------------

    def routes(self, router: APIRouter) -> None:
        add_authorize(router, "/oauth/oauth2/auth", self)
        router.add_api_route("/oauth/oauth2/token", self.oauth_token, methods=["POST"])
        router.add_api_route(f"{BASE}/user/access", self.revoke, methods=["DELETE"])
        router.add_api_route(f"{BASE}/user/profile/basic", self.profile)
        router.add_api_route(f"{BASE}/user/measurement/body", self.body)
        for path in KINDS:
            router.add_api_route(f"{BASE}/{path}", self._lister(path))
        router.add_api_route(f"{BASE}/cycle/{{cycle_id}}", self.one_cycle)
        router.add_api_route(f"{BASE}/cycle/{{cycle_id}}/sleep", self.cycle_part("sleep"))
        router.add_api_route(f"{BASE}/cycle/{{cycle_id}}/recovery", self.cycle_part("recovery"))
        router.add_api_route(f"{BASE}/activity/sleep/{{record_id}}", self._getter("activity/sleep"))
        router.add_api_route(
            f"{BASE}/activity/workout/{{record_id}}", self._getter("activity/workout")
        )

    async def revoke(self, request: Request) -> Response:
        """WHOOP: the user's own token revokes the app's access (and stops their webhooks)."""
        access = self.authenticate(request)
        self.oauth.revoke_grant(access.grant)
        return Response(status_code=204)

    async def profile(self, request: Request) -> Response:
        grant = self.guard(request, ("read:profile",))
        p = self.person(grant.user)
        return json_response(
            {
                "user_id": whoop_user_id(self.ctx.settings.seed, grant.user),
                "email": f"{grant.user}@example.com",
                "first_name": p.first_name,
                "last_name": p.last_name,
            }
        )

    async def body(self, request: Request) -> Response:
        grant = self.guard(request, ("read:body_measurement",))
        p = self.person(grant.user)
        return json_response(
            {
                "height_meter": p.height_m,
                "weight_kilogram": round(p.weight_kg, 4),
                "max_heart_rate": p.max_hr,
            }
        )

    def _records(self, user: str, kind: str) -> list[Rec]:
        """Every record that has begun, newest first."""
        first, last = self.history(user)
        seed, now = self.ctx.settings.seed, self.now()
        attribute = KINDS[kind][0]
        out: list[Rec] = []
        for day in days_between(first, last):
            value = getattr(whoop_day(seed, user, day), attribute)
            for rec in value if isinstance(value, tuple) else (value,):
                if rec.start <= now and (attribute == "cycle" or rec.end <= now):
                    out.append(rec)
        out.sort(key=lambda r: r.start, reverse=True)
        return out

    def _lister(self, kind: str) -> Callable[[Request], Any]:
        async def list_records(request: Request) -> Response:
            grant = self.guard(request, (KINDS[kind][1],))
            params = request.query_params
            try:
                limit = int(params.get("limit", "10"))
            except ValueError:
                return _bad_request("limit must be an integer")
            if not 1 <= limit <= 25:
                return _bad_request("limit must be between 1 and 25")
            if params.get("nextToken"):
                state = decode_token(params["nextToken"])
                if state is None or state.get("k") != kind:
                    return _bad_request("Invalid nextToken")
                start, end, offset = state["s"], state["e"], int(state["o"])
            else:
                try:
                    start = parse_time(params["start"]) if params.get("start") else None
                    end = parse_time(params["end"]) if params.get("end") else None
                except ValueError:
                    return _bad_request("start and end must be ISO 8601 date-times")
                offset = 0
            now = self.now()
            records = [
                r
                for r in self._records(grant.user, kind)
                if (start is None or r.start >= start) and (end is None or r.start < end)
            ]
            page = [as_of(r, now) for r in records[offset : offset + limit]]
            body: dict[str, Any] = {"records": page}
            if offset + limit < len(records):
                state = {"k": kind, "s": start, "e": end, "o": offset + limit}
                body["next_token"] = encode_token(state)
            return json_response(body)

        list_records.__doc__ = (
            f"WHOOP: {kind} records, newest first (start, end, limit, nextToken)."
        )
        return list_records

    def _getter(self, kind: str) -> Callable[[str, Request], Any]:
        async def get_record(record_id: str, request: Request) -> Response:
            grant = self.guard(request, (KINDS[kind][1],))
            for rec in self._records(grant.user, kind):
                if rec.doc["id"] == record_id:
                    return json_response(as_of(rec, self.now()))
            return json_response({"message": "Not Found"}, 404)

        return get_record

    def _cycle_day(self, user: str, cycle_id: str) -> date | None:
        try:
            day = day_of_cycle(self.ctx.settings.seed, user, int(cycle_id))
        except ValueError:
            return None
        first, last = self.history(user)
        if day is None or not first <= day <= last:
            return None
        return day

    async def one_cycle(self, cycle_id: str, request: Request) -> Response:
        grant = self.guard(request, ("read:cycles",))
        day = self._cycle_day(grant.user, cycle_id)
        rec = whoop_day(self.ctx.settings.seed, grant.user, day).cycle if day else None
        if rec is None or rec.start > self.now():
            return json_response({"message": "Not Found"}, 404)
        return json_response(as_of(rec, self.now()))

    def cycle_part(self, part: str) -> Callable[[str, Request], Any]:
        async def get_part(cycle_id: str, request: Request) -> Response:
            grant = self.guard(request, (f"read:{part}",))
            day = self._cycle_day(grant.user, cycle_id)
            if day is None:
                return json_response({"message": "Not Found"}, 404)
            found = whoop_day(self.ctx.settings.seed, grant.user, day)
            rec = found.sleep[0] if part == "sleep" else found.recovery
            if rec.end > self.now():
                return json_response({"message": "Not Found"}, 404)
            return json_response(as_of(rec, self.now()))

        return get_part
