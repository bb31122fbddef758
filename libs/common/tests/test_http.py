from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from healthmesh.common.http import ApiError, install_error_handlers, install_operations

SECRET_DETAIL = "db password is hunter2"


class Item(BaseModel):
    name: str
    count: int


class _Health:
    """Readiness checks whose outcome the test switches."""

    def __init__(self) -> None:
        self.database_up = True

    async def database(self) -> None:
        if not self.database_up:
            raise ConnectionRefusedError("connection refused")

    async def broker(self) -> None:
        return None


def _app(health: _Health) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_operations(app, "testsvc", [health.broker, health.database])

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise ApiError(404, "item_not_found", f"no item {item_id}")
        if item_id == 409:
            raise ApiError(409, "conflict", "already there")
        return {"id": item_id}

    @app.post("/items")
    async def add_item(item: Item) -> Item:
        return item

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET_DETAIL)

    return app


@pytest.fixture
def health() -> _Health:
    return _Health()


@pytest.fixture
async def client(health: _Health) -> AsyncIterator[httpx.AsyncClient]:
    # Starlette re-raises unhandled errors after answering (so servers log them); we want the
    # answer, as a real client would get it.
    transport = httpx.ASGITransport(app=_app(health), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as c:
        yield c


async def test_a_normal_request_is_answered(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/7")

    assert response.status_code == 200
    assert response.json() == {"id": 7}


@pytest.mark.parametrize(
    ("item_id", "status", "code", "message"),
    [(404, 404, "item_not_found", "no item 404"), (409, 409, "conflict", "already there")],
)
async def test_an_api_error_becomes_the_error_object_with_its_status(
    client: httpx.AsyncClient, item_id: int, status: int, code: str, message: str
) -> None:
    response = await client.get(f"/items/{item_id}")

    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": message}}


async def test_a_body_validation_error_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json={"name": "socks", "count": "many"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("count: ")
    assert "name" not in error["message"]


async def test_a_missing_body_field_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json={"count": 2})

    assert response.status_code == 422
    assert response.json()["error"]["message"] == "name: Field required"


async def test_a_path_parameter_error_is_named_with_its_location(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/items/seven")

    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("path.item_id: ")


async def test_an_unknown_route_is_a_not_found_error_object(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}


async def test_a_wrong_method_is_405_with_allow_header(client: httpx.AsyncClient) -> None:
    response = await client.delete("/items")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


async def test_an_unexpected_exception_is_500_internal_without_details(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "internal error"}}
    for leak in ("Traceback", "RuntimeError", "hunter2", "test_http.py"):
        assert leak not in response.text


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ready_when_every_check_passes(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


async def test_readyz_is_503_naming_the_failing_check(
    client: httpx.AsyncClient, health: _Health
) -> None:
    health.database_up = False

    response = await client.get("/readyz")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert error["message"] == "database: ConnectionRefusedError"

    health.database_up = True
    assert (await client.get("/readyz")).status_code == 200


async def test_metrics_count_requests_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    for item_id in (1, 2, 3):
        await client.get(f"/items/{item_id}")
    await client.get("/items/404")
    await client.get("/nowhere")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'http_requests_total{method="GET",route="/items/{item_id}",service="testsvc",status="200"}'
        " 3.0" in text
    )
    assert (
        'http_requests_total{method="GET",route="/items/{item_id}",service="testsvc",status="404"}'
        " 1.0" in text
    )
    assert 'route="unmatched",service="testsvc",status="404"} 1.0' in text
    assert 'http_request_seconds_count{route="/items/{item_id}",service="testsvc"} 4.0' in text
    assert "/items/1" not in text  # raw paths would explode the label cardinality


async def test_each_app_has_its_own_metrics(client: httpx.AsyncClient, health: _Health) -> None:
    await client.get("/items/1")
    transport = httpx.ASGITransport(app=_app(health))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as other:
        text = (await other.get("/metrics")).text

    assert 'route="/items/{item_id}"' not in text


async def test_unexpected_exceptions_are_counted_as_500(client: httpx.AsyncClient) -> None:
    await client.get("/boom")

    text = (await client.get("/metrics")).text

    assert 'route="/boom",service="testsvc",status="500"} 1.0' in text
