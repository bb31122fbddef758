"""Forwarding a client's call to the service that owns the answer (auth, preferences), and a
provider's webhook verbatim to the connectors."""

import httpx
from fastapi import Request, Response

from healthmesh.common.http import ApiError

_PASSED_HEADERS = ("authorization", "content-type", "accept", "if-none-match")
_RETURNED_HEADERS = ("location", "cache-control", "etag", "www-authenticate")


async def forward(
    request: Request, client: httpx.AsyncClient, base_url: str, path: str
) -> Response:
    headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
    try:
        upstream = await client.request(
            request.method,
            f"{base_url.rstrip('/')}{path}",
            content=await request.body(),
            headers=headers,
            params=request.query_params,
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise ApiError(503, "unavailable", "an internal service did not answer") from None
    passed_back = {h: upstream.headers[h] for h in _RETURNED_HEADERS if h in upstream.headers}
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
        headers=passed_back,
    )


_HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


async def forward_verbatim(
    request: Request, client: httpx.AsyncClient, base_url: str, path: str
) -> Response:
    """Forward every end-to-end header and the exact body bytes (webhook signatures cover them),
    with the caller's address in X-Forwarded-For."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    if request.client is not None:
        headers["x-forwarded-for"] = request.client.host
    try:
        upstream = await client.request(
            request.method,
            f"{base_url.rstrip('/')}{path}",
            content=await request.body(),
            headers=headers,
            params=request.query_params,
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise ApiError(503, "unavailable", "an internal service did not answer") from None
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
    )
