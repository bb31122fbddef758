"""Answers: JSON (orjson, large pages are cheap) and the exception that carries a ready answer."""

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
