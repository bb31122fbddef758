"""Oura (API v2): oura.md. Body credentials, space-separated scopes, rotating refresh tokens,
24 h access tokens, `{"data": [...], "next_token": ...}` pages, FastAPI-style `detail` errors."""

import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
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
from healthmesh.simulator.providers.oura_data import oura_day
from healthmesh.simulator.ratelimit import Usage, Window
from healthmesh.simulator.responses import Answer, error_page, json_response
from healthmesh.simulator.synth import days_between, local_today, stable_int
from healthmesh.simulator.webhooks import deliver, echoed, oura_signature

SCOPES = ("email", "personal", "daily", "heartrate", "workout", "tag", "session", "spo2Daily")
SPO2 = ("spo2Daily", "spo2")  # the docs say spo2Daily; ex_oura says the real scope is spo2
COLLECTIONS = {
    "daily_activity": ("daily",),
    "daily_sleep": ("daily",),
    "daily_readiness": ("daily",),
    "sleep": ("daily",),
    "daily_spo2": SPO2,
    "workout": ("workout",),
}
PAGE = 100  # documents per page (Oura does not document its page size)
HEARTRATE_PAGE = 10_000
ALWAYS = ("id", "day", "timestamp")  # returned whatever `fields` asks


def _invalid(where: str, message: str, value: str | None) -> Response:
    return json_response(
        {
            "detail": [
                {"type": "value_error", "loc": ["query", where], "msg": message, "input": value}
            ]
        },
        422,
    )


def _parse_date(where: str, value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise Answer(_invalid(where, "Input should be a valid date or datetime", value)) from None


def _parse_datetime(where: str, value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Answer(_invalid(where, "Input should be a valid datetime", value)) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Oura(Provider):
    name = "oura"
    title = "Oura"
    scope_separator = " "
    default_ttl_s = 86_400
    code_ttl_s = 600

    def policy(self, access_ttl_s: int) -> Policy:
        return Policy(
            access_ttl_s=access_ttl_s, code_ttl_s=self.code_ttl_s, rotation=Rotation.ROTATE
        )

    # --- OAuth ---------------------------------------------------------------------------------

    def parse_authorize(self, params: Mapping[str, str], user: str) -> AuthorizeRequest:
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri")
        if not self.oauth.known_client(client_id):
            raise Answer(error_page(400, "Invalid client", "Unknown client_id."))
        if not valid_redirect(redirect_uri) or redirect_uri is None:
            raise Answer(error_page(400, "Invalid redirect_uri", "Missing or invalid."))
        state = params.get("state")
        if params.get("response_type") != "code":
            raise RedirectError(redirect_uri, state, "unsupported_response_type", "Use code.")
        scopes = self.split_scopes(params.get("scope")) or SCOPES
        unknown = [s for s in scopes if s not in SCOPES and s not in SPO2]
        if unknown:
            raise RedirectError(redirect_uri, state, "invalid_scope", f"Unknown: {unknown}")
        return AuthorizeRequest(client_id, redirect_uri, scopes, state, user)

    def token_body(self, issued: Issued, grant_type: str) -> dict[str, Any]:
        assert issued.refresh is not None
        return {
            "token_type": "bearer",
            "access_token": issued.access.value,
            "expires_in": self.expires_in(issued),
            "refresh_token": issued.refresh.value,
        }

    def token_error(self, error: OAuthError) -> Response:
        status = 401 if error.error == "invalid_client" else 400
        return json_response({"error": error.error, "error_description": error.description}, status)

    # --- refusals ------------------------------------------------------------------------------

    def unauthorized(self, problem: TokenProblem) -> Response:
        return json_response({"detail": "Unauthorized"}, 401)

    def forbidden(self, scopes: tuple[str, ...]) -> Response:
        return json_response({"detail": "Forbidden"}, 403)

    def rate_limited(self, headers: dict[str, str]) -> Response:
        return json_response({"detail": "Request Rate Limit Exceeded."}, 429, headers)

    def count_request(self, request: Request, token: AccessToken) -> list[Usage]:
        window = Window(self.ctx.settings.oura_limit_5min, 300)
        return self.ctx.limiter.hit(f"oura:{token.grant.client_id}:{token.grant.user}", (window,))

    # --- routes --------------------------------------------------------------------------------

    def routes(self, router: APIRouter) -> None:
        add_authorize(router, "/oauth/authorize", self)
        router.add_api_route("/oauth/token", self.oauth_token, methods=["POST"])
        router.add_api_route("/oauth/revoke", self.revoke, methods=["GET", "POST"])
        router.add_api_route("/v2/usercollection/personal_info", self.personal_info)
        router.add_api_route("/v2/usercollection/heartrate", self.heartrate)
        for name in COLLECTIONS:
            router.add_api_route(f"/v2/usercollection/{name}", self._lister(name))
            router.add_api_route(f"/v2/usercollection/{name}/{{document_id}}", self._getter(name))

    async def revoke(self, request: Request) -> Response:
        """Revoke with the access token in the query string (as Oura documents)."""
        token = (await self.fields(request)).get("access_token", "")
        grant = self.oauth.find_grant(token)
        if grant is None:
            return json_response({"detail": "Invalid token"}, 400)
        self.oauth.revoke_grant(grant)
        return json_response({})

    def user_id(self, user: str) -> str:
        return f"{stable_int(self.ctx.settings.seed, 'oura-id', user):x}"

    def identity(self, user: str) -> dict[str, Any]:
        return {**super().identity(user), "user_id": self.user_id(user)}

    async def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """`kind`: "verification" (GET with verification_token + challenge, expects the challenge
        echoed) or "event" (default): `event_type`, `data_type`, `object_id`, signed."""
        url = body["url"]
        if body.get("kind") == "verification":
            challenge = secrets.token_urlsafe(16)
            params = {
                "verification_token": str(body.get("verification_token", "")),
                "challenge": challenge,
            }
            result = await deliver(self.ctx, "GET", url, params=params)
            return {"requests": [result], "verified": echoed(result, "challenge", challenge)}
        user = body["user"]
        self.live_grant(user)
        data_type = str(body.get("data_type", "sleep"))
        object_id = body.get("object_id")
        if object_id is None and data_type in COLLECTIONS:
            first, last = self.history(user)
            docs = self._docs(user, data_type, first, last)
            object_id = docs[-1]["id"] if docs else None
        payload = {
            "event_type": str(body.get("event_type", "update")),
            "data_type": data_type,
            "object_id": object_id or secrets.token_hex(16),
            "event_time": datetime.fromtimestamp(self.now(), UTC).isoformat(timespec="seconds"),
            "user_id": self.user_id(user),
        }
        raw = orjson.dumps(payload)
        timestamp = str(int(self.now()))
        headers = {
            "content-type": "application/json",
            "x-oura-signature": oura_signature(self.oauth.client_secret, timestamp, raw),
            "x-oura-timestamp": timestamp,
        }
        return {"requests": [await deliver(self.ctx, "POST", url, headers=headers, content=raw)]}

    async def personal_info(self, request: Request) -> Response:
        grant = self.guard(request, ("personal", "email"))
        p = self.person(grant.user)
        return json_response(
            {
                "id": self.user_id(grant.user),
                "age": 25 + stable_int(grant.user, bits=5),
                "weight": round(p.weight_kg, 1),
                "height": p.height_m,
                "biological_sex": "male" if p.sex == "M" else "female",
                "email": f"{grant.user}@example.com" if "email" in grant.scopes else None,
            }
        )

    def _docs(self, user: str, name: str, start: date, end: date) -> list[dict[str, Any]]:
        first, last = self.history(user)
        now = self.now()
        seed = self.ctx.settings.seed
        return [
            rec.doc
            for day in days_between(max(start, first), min(end, last))
            for rec in oura_day(seed, user, day).collection(name)
            if rec.at <= now and start.isoformat() <= rec.doc["day"] <= end.isoformat()
        ]

    def _lister(self, name: str) -> Any:
        async def list_documents(request: Request) -> Response:
            grant = self.guard(request, COLLECTIONS[name])
            params = request.query_params
            if params.get("next_token"):
                state = decode_token(params["next_token"])
                if state is None or state.get("c") != name:
                    return json_response({"detail": "Invalid next_token."}, 400)
                start, end = date.fromisoformat(state["s"]), date.fromisoformat(state["e"])
                offset = int(state["o"])
            else:
                today = local_today(self.now(), self.person(grant.user).tz)
                end_text = params.get("end_date")
                end = _parse_date("end_date", end_text) if end_text else today
                start_text = params.get("start_date")
                start = (
                    _parse_date("start_date", start_text) if start_text else end - timedelta(days=1)
                )
                if start > end:
                    return _invalid("start_date", "Start date must be before end date", start_text)
                offset = 0
            docs = self._docs(grant.user, name, start, end)
            page = docs[offset : offset + PAGE]
            more = offset + PAGE < len(docs)
            state = {"c": name, "s": start.isoformat(), "e": end.isoformat(), "o": offset + PAGE}
            fields = params.get("fields")
            if fields:
                keep = {f.strip() for f in fields.split(",")} | set(ALWAYS)
                page = [{k: v for k, v in d.items() if k in keep} for d in page]
            return json_response(
                {"data": page, "next_token": encode_token(state) if more else None}
            )

        list_documents.__doc__ = f"Oura: list {name} documents (start_date/end_date, next_token)."
        return list_documents

    def _getter(self, name: str) -> Any:
        async def get_document(document_id: str, request: Request) -> Response:
            grant = self.guard(request, COLLECTIONS[name])
            first, last = self.history(grant.user)
            for doc in self._docs(grant.user, name, first, last):
                if doc["id"] == document_id:
                    return json_response(doc)
            return json_response({"detail": "Document not found."}, 404)

        get_document.__doc__ = f"Oura: one {name} document."
        return get_document

    async def heartrate(self, request: Request) -> Response:
        """Oura: heart-rate rows between start_datetime (inclusive) and end_datetime (exclusive)."""
        grant = self.guard(request, ("heartrate",))
        params = request.query_params
        now = self.now()
        if params.get("next_token"):
            state = decode_token(params["next_token"])
            if state is None or state.get("c") != "heartrate":
                return json_response({"detail": "Invalid next_token."}, 400)
            start, end, offset = float(state["s"]), float(state["e"]), int(state["o"])
        else:
            end_text, start_text = params.get("end_datetime"), params.get("start_datetime")
            end = _parse_datetime("end_datetime", end_text) if end_text else now
            start = _parse_datetime("start_datetime", start_text) if start_text else end - 86_400
            if start > end:
                return _invalid("start_datetime", "Start date must be before end date", start_text)
            offset = 0
        p = self.person(grant.user)
        first, last = self.history(grant.user)
        lo = datetime.fromtimestamp(start, p.tz).date()
        hi = datetime.fromtimestamp(end, p.tz).date()
        seed = self.ctx.settings.seed
        rows = [
            rec.doc
            for day in days_between(max(lo, first), min(hi, last))
            for rec in oura_day(seed, grant.user, day).heartrate
            if start <= rec.at < end and rec.at <= now
        ]
        if params.get("latest", "").lower() == "true":
            rows = rows[-1:]
        page = rows[offset : offset + HEARTRATE_PAGE]
        more = offset + HEARTRATE_PAGE < len(rows)
        state = {"c": "heartrate", "s": start, "e": end, "o": offset + HEARTRATE_PAGE}
        return json_response({"data": page, "next_token": encode_token(state) if more else None})
