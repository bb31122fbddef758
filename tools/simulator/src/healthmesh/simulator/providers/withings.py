"""Withings: withings.md. Every call is a webservice + `action`, every answer is HTTP 200 with
`{"status": 0, "body": ...}` or a non-zero status and an `error` string (401 bad token, 503
invalid params, 601 too many requests). Tokens come from `POST /v2/oauth2 action=requesttoken`;
codes live 30 s; a used refresh token stays valid until the new access token is first used, or
8 hours; revoke is a signed request (nonce from /v2/signature)."""

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

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
    RedirectError,
    valid_redirect,
)
from healthmesh.simulator.providers.withings_data import Rec, withings_day, withings_userid
from healthmesh.simulator.ratelimit import Usage, Window
from healthmesh.simulator.responses import Answer, error_page, json_response
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.webhooks import deliver

SCOPES = ("user.info", "user.metrics", "user.activity", "user.sleepevents")
PAGE = 100
GRACE_S = 8 * 3600
ALWAYS_ACTIVITY = ("date", "timezone", "deviceid", "hash_deviceid", "brand", "is_tracker")


def ok(body: dict[str, Any]) -> Response:
    return json_response({"status": 0, "body": body})


def failed(status: int, error: str) -> Response:
    """Withings refuses with HTTP 200 and a status in the body."""
    return json_response({"status": status, "body": {}, "error": error})


def sign(secret: str, *values: str) -> str:
    """Withings request signature: HMAC-SHA256 of the values (sorted by key), comma-joined."""
    return hmac.new(secret.encode(), ",".join(values).encode(), hashlib.sha256).hexdigest()


def _int(fields: Mapping[str, str], name: str) -> int | None:
    raw = fields.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise Answer(failed(503, f"Invalid Params: {name}")) from None


def _ymd(fields: Mapping[str, str], name: str) -> date | None:
    raw = fields.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Answer(failed(503, f"Invalid Params: {name}")) from None


class Withings(Provider):
    name = "withings"
    title = "Withings"
    scope_separator = ","
    default_ttl_s = 10_800
    code_ttl_s = 30

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nonces: dict[str, float] = {}

    def policy(self, access_ttl_s: int) -> Policy:
        return Policy(
            access_ttl_s=access_ttl_s,
            code_ttl_s=self.code_ttl_s,
            rotation=Rotation.ROTATE_WITH_GRACE,
            grace_s=GRACE_S,
        )

    def mint(self, kind: str) -> str:
        return secrets.token_hex(20)

    def userid(self, user: str) -> str:
        return withings_userid(self.ctx.settings.seed, user)

    def identity(self, user: str) -> dict[str, Any]:
        return {**super().identity(user), "userid": self.userid(user)}

    # --- OAuth ---------------------------------------------------------------------------------

    def parse_authorize(self, params: Mapping[str, str], user: str) -> AuthorizeRequest:
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri")
        if not self.oauth.known_client(client_id):
            raise Answer(error_page(400, "Invalid client_id", "This application is unknown."))
        if not valid_redirect(redirect_uri) or redirect_uri is None:
            raise Answer(error_page(400, "Invalid redirect_uri", "The redirect_uri is invalid."))
        state = params.get("state")
        if params.get("response_type") != "code":
            raise RedirectError(redirect_uri, state, "unsupported_response_type", "Use code.")
        scopes = self.split_scopes(params.get("scope"))
        if not scopes or any(s not in SCOPES for s in scopes):
            raise RedirectError(redirect_uri, state, "invalid_scope", "Invalid scope.")
        return AuthorizeRequest(client_id, redirect_uri, scopes, state, user)

    def token_body(self, issued: Issued, grant_type: str) -> dict[str, Any]:
        assert issued.refresh is not None
        return {
            "userid": self.userid(issued.access.grant.user),
            "access_token": issued.access.value,
            "refresh_token": issued.refresh.value,
            "scope": self.join_scopes(issued.access.grant.scopes),
            "expires_in": self.expires_in(issued),
            "token_type": "Bearer",
        }

    def token_error(self, error: OAuthError) -> Response:
        if error.error == "invalid_client":
            return failed(503, "Invalid Params: invalid client_id or client_secret")
        if error.error == "unsupported_grant_type":
            return failed(503, "Invalid Params: invalid grant_type")
        if "refresh" in error.description:
            return failed(503, "Invalid Params: invalid refresh_token")
        return failed(503, "Invalid Params: invalid code")

    async def oauth2(self, request: Request) -> Response:
        """Withings /v2/oauth2: action=requesttoken (code or refresh grant) or action=revoke."""
        fields = await self.fields(request)
        action = fields.get("action")
        if action == "revoke":
            return self._revoke(fields)
        if action != "requesttoken":
            return failed(2554, "Unknown action")
        grant_type = fields.get("grant_type", "")
        await self.token_call(grant_type)
        client_id = fields.get("client_id", "")
        async with self.oauth.lock:
            try:
                self.oauth.check_client(client_id, fields.get("client_secret"))
                if grant_type == "authorization_code":
                    issued = self.oauth.exchange(
                        client_id=client_id,
                        code=fields.get("code"),
                        redirect_uri=fields.get("redirect_uri"),
                        verifier=None,
                    )
                elif grant_type == "refresh_token":
                    issued = self.oauth.refresh(
                        client_id=client_id, refresh_token=fields.get("refresh_token")
                    )
                else:
                    raise OAuthError("unsupported_grant_type", grant_type)
            except OAuthError as exc:
                return self.token_error(exc)
            return ok(self.token_body(issued, grant_type))

    async def signature(self, request: Request) -> Response:
        """Withings /v2/signature action=getnonce: a single-use nonce for signed requests."""
        fields = await self.fields(request)
        if fields.get("action") != "getnonce":
            return failed(2554, "Unknown action")
        client_id, timestamp = fields.get("client_id", ""), fields.get("timestamp", "")
        expected = sign(self.oauth.client_secret, "getnonce", client_id, timestamp)
        if not self.oauth.known_client(client_id) or not hmac.compare_digest(
            expected, fields.get("signature", "")
        ):
            return failed(342, "The signature (using Oauth) is invalid")
        nonce = secrets.token_hex(20)
        self.nonces[nonce] = self.now() + 600
        return ok({"nonce": nonce})

    def _revoke(self, fields: Mapping[str, str]) -> Response:
        client_id, nonce = fields.get("client_id", ""), fields.get("nonce", "")
        expected = sign(self.oauth.client_secret, "revoke", client_id, nonce)
        expires = self.nonces.pop(nonce, 0.0)
        if (
            not self.oauth.known_client(client_id)
            or expires < self.now()
            or not hmac.compare_digest(expected, fields.get("signature", ""))
        ):
            return failed(342, "The signature (using Oauth) is invalid")
        userid = fields.get("userid", "")
        grants = [g for g in self.oauth.grants if self.userid(g.user) == userid and not g.revoked]
        if not grants:
            return failed(503, "Invalid Params: invalid userid")
        for grant in grants:
            self.oauth.revoke_grant(grant)
        return ok({})

    # --- refusals and limits -------------------------------------------------------------------

    def unauthorized(self, problem: TokenProblem) -> Response:
        return failed(
            401,
            "XRequestID: Not provided invalid_token: The access token provided is invalid",
        )

    def forbidden(self, scopes: tuple[str, ...]) -> Response:
        return failed(
            401,
            "XRequestID: Not provided insufficient_scope: The request requires higher "
            "privileges than provided by the access token",
        )

    def rate_limited(self, headers: dict[str, str]) -> Response:
        return failed(601, "Too Many Requests")

    def server_error(self, status: int) -> Response:
        return Response(
            b"Service Unavailable" if status == 503 else b"Internal Server Error",
            status_code=status,
            media_type="text/plain",
        )

    def count_request(self, request: Request, token: AccessToken) -> list[Usage]:
        window = Window(self.ctx.settings.withings_limit_minute, 60)
        return self.ctx.limiter.hit(f"withings:{token.grant.client_id}", (window,))

    async def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """A notify POST, form-encoded: `appli` (default 1), `startdate`/`enddate` (default the
        last day), optional `date`, `deviceid`, `action`. Withings signs nothing (it publishes
        its IP ranges instead)."""
        user = body["user"]
        self.live_grant(user)
        now = int(self.now())
        form = {
            "userid": self.userid(user),
            "appli": str(body.get("appli", 1)),
            "startdate": str(body.get("startdate", now - 86_400)),
            "enddate": str(body.get("enddate", now)),
        }
        for key in ("date", "deviceid", "action"):
            if key in body:
                form[key] = str(body[key])
        headers = {"content-type": "application/x-www-form-urlencoded"}
        raw = urlencode(form).encode()
        return {
            "requests": [await deliver(self.ctx, "POST", body["url"], headers=headers, content=raw)]
        }

    # --- routes --------------------------------------------------------------------------------

    def routes(self, router: APIRouter) -> None:
        add_authorize(router, "/oauth2_user/authorize2", self)
        both = ["GET", "POST"]
        router.add_api_route("/v2/oauth2", self.oauth2, methods=both)
        router.add_api_route("/v2/signature", self.signature, methods=both)
        router.add_api_route("/measure", self.measure, methods=both)
        router.add_api_route("/v2/measure", self.measure_v2, methods=both)
        router.add_api_route("/v2/sleep", self.sleep, methods=both)

    async def _call(self, request: Request, scope: str) -> tuple[Grant, dict[str, str]]:
        fields = await self.fields(request)
        token = self.bearer(request) or fields.get("access_token")
        return self.guard(request, (scope,), token=token), fields

    def _days(self, user: str, lo: date | None, hi: date | None) -> list[date]:
        first, last = self.history(user)
        return days_between(max(lo or first, first), min(hi or last, last))

    async def measure(self, request: Request) -> Response:
        """Withings /measure action=getmeas: measure groups, newest first, offset + more."""
        fields = await self.fields(request)
        if fields.get("action") != "getmeas":
            return failed(2554, "Unknown action")
        grant, fields = await self._call(request, "user.metrics")
        p = self.person(grant.user)
        start, end = _int(fields, "startdate"), _int(fields, "enddate")
        lastupdate, offset = _int(fields, "lastupdate"), _int(fields, "offset") or 0
        category = _int(fields, "category") or 1
        raw_types = fields.get("meastypes") or fields.get("meastype") or ""
        try:
            types = {int(t) for t in raw_types.split(",") if t.strip()}
        except ValueError:
            return failed(503, "Invalid Params: meastype")

        def day_of(ts: int | None, slack: int) -> date | None:
            if ts is None:
                return None
            return datetime.fromtimestamp(ts, p.tz).date() + timedelta(days=slack)

        lo = day_of(start if lastupdate is None else lastupdate, -1)
        days = self._days(grant.user, lo, day_of(end if lastupdate is None else None, 1))
        now, seed = self.now(), self.ctx.settings.seed
        groups = []
        for day in days:
            for rec in withings_day(seed, grant.user, day).groups:
                doc = rec.doc
                if rec.at > now or category != 1:
                    continue
                if lastupdate is not None:
                    if rec.modified < lastupdate:
                        continue
                elif (start is not None and doc["date"] < start) or (
                    end is not None and doc["date"] > end
                ):
                    continue
                measures = [m for m in doc["measures"] if not types or m["type"] in types]
                if measures:
                    groups.append({**doc, "measures": measures})
        groups.sort(key=lambda g: g["date"], reverse=True)
        page = groups[offset : offset + PAGE]
        more = offset + PAGE < len(groups)
        return ok(
            {
                "updatetime": int(now),
                "timezone": p.tz_name,
                "measuregrps": page,
                "more": 1 if more else 0,
                "offset": offset + PAGE if more else 0,
            }
        )

    async def measure_v2(self, request: Request) -> Response:
        """Withings /v2/measure: action=getactivity or getworkouts (startdateymd/enddateymd)."""
        fields = await self.fields(request)
        action = fields.get("action")
        if action == "getactivity":
            return await self._by_day(request, "activities", lambda d: (d.activity,))
        if action == "getworkouts":
            return await self._by_day(request, "series", lambda d: d.workouts)
        return failed(2554, "Unknown action")

    async def sleep(self, request: Request) -> Response:
        """Withings /v2/sleep action=getsummary: one summary per night, by wake-up date."""
        fields = await self.fields(request)
        if fields.get("action") != "getsummary":
            return failed(2554, "Unknown action")
        return await self._by_day(request, "series", lambda d: (d.sleep,), nested="data")

    async def _by_day(
        self,
        request: Request,
        key: str,
        pick: Callable[[Any], tuple[Rec, ...]],
        nested: str | None = None,
    ) -> Response:
        grant, fields = await self._call(request, "user.activity")
        start, end = _ymd(fields, "startdateymd"), _ymd(fields, "enddateymd")
        lastupdate, offset = _int(fields, "lastupdate"), _int(fields, "offset") or 0
        if lastupdate is None and (start is None or end is None):
            return failed(503, "Invalid Params: startdateymd and enddateymd, or lastupdate")
        wanted = {f.strip() for f in fields.get("data_fields", "").split(",") if f.strip()}
        now, seed = self.now(), self.ctx.settings.seed
        lo = start - timedelta(days=1) if start else None
        docs = []
        for day in self._days(grant.user, lo, end + timedelta(days=1) if end else None):
            for rec in pick(withings_day(seed, grant.user, day)):
                doc = rec.doc
                if rec.at > now:
                    continue
                if lastupdate is not None and rec.modified < lastupdate:
                    continue
                if lastupdate is None and not (
                    start is not None
                    and end is not None
                    and start.isoformat() <= doc["date"] <= end.isoformat()
                ):
                    continue
                if wanted and nested:
                    doc = {**doc, nested: {k: v for k, v in doc[nested].items() if k in wanted}}
                elif wanted:
                    doc = {k: v for k, v in doc.items() if k in wanted or k in ALWAYS_ACTIVITY}
                docs.append(doc)
        page = docs[offset : offset + PAGE]
        more = offset + PAGE < len(docs)
        return ok({key: page, "more": more, "offset": offset + PAGE if more else 0})
