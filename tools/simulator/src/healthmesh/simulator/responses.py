"""Answers: JSON (orjson, large pages are cheap) and the exception that carries a ready answer."""

import html
from typing import Any

import orjson
from fastapi import Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


class Answer(Exception):
    """Stop here and send `response` (a refusal in the provider's own format)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def error_page(status: int, title: str, message: str) -> Response:
    """What a browser sees when an authorize request cannot even be sent back (bad client or
    redirect_uri): never a redirect to an unvalidated address."""
    body = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
    body += f"<p>{html.escape(message)}</p>"
    return Response(body, status_code=status, media_type="text/html")
