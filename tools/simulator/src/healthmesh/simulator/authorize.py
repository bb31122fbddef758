"""The consent step every provider shares: validate, then approve at once or show an Approve page.

`sim_user` (query) names the simulated person who approves (default `user-1`); `sim_grant`
lists the scopes they leave ticked (default: all requested), as real users can untick boxes.
"""

import html
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from healthmesh.simulator.providers.base import DEFAULT_USER, Provider, RedirectError


def redirect_to(uri: str, params: dict[str, str]) -> Response:
    parts = urlsplit(uri)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)


def add_authorize(router: APIRouter, path: str, provider: Provider) -> None:
    """GET shows or skips consent; POST is the Approve/Deny form's answer."""

    @router.get(path, summary=f"{provider.title}: authorize (consent)")
    async def authorize(request: Request) -> Response:
        return await _consent(provider, request, None)

    @router.post(path, summary=f"{provider.title}: consent decision", include_in_schema=False)
    async def decide(request: Request) -> Response:
        form = await request.form()
        return await _consent(provider, request, str(form.get("decision", "deny")))


async def _consent(provider: Provider, request: Request, decision: str | None) -> Response:
    params = dict(request.query_params)
    user = params.pop("sim_user", "") or DEFAULT_USER
    ticked = params.pop("sim_grant", None)
    try:
        req = provider.parse_authorize(params, user)
    except RedirectError as exc:
        answer = {"error": exc.error, "error_description": exc.description}
        if exc.state is not None:
            answer["state"] = exc.state
        return redirect_to(exc.redirect_uri, answer)
    if ticked is not None:
        keep = set(re.split(r"[\s,+]+", ticked))
        req.scopes = tuple(s for s in req.scopes if s in keep)
    if decision is None and not provider.ctx.settings.auto_approve:
        return _page(provider, request, user, req.scopes)
    if decision == "deny":
        return redirect_to(req.redirect_uri, provider.denied_params(req))
    code = provider.oauth.issue_code(
        user=req.user,
        client_id=req.client_id,
        redirect_uri=req.redirect_uri,
        scopes=req.scopes,
        challenge=req.challenge,
        challenge_method=req.challenge_method,
        offline=req.offline,
    )
    return redirect_to(req.redirect_uri, provider.approved_params(req, code.value))


def _page(provider: Provider, request: Request, user: str, scopes: tuple[str, ...]) -> Response:
    action = html.escape(f"{request.url.path}?{request.url.query}", quote=True)
    items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{provider.title} (simulated)</title></head>
<body>
<h1>{provider.title} (simulated)</h1>
<p>Simulated user <b>{html.escape(user)}</b> is asked to allow access to:</p>
<ul>{items}</ul>
<form method="post" action="{action}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>"""
    return HTMLResponse(body)
