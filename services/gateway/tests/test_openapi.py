"""The gateway's OpenAPI document is one client generators can use."""

import collections

from healthmesh.gateway.app import create_app
from healthmesh.gateway.settings import Settings


def test_every_operation_has_an_operation_id_of_its_own() -> None:
    spec = create_app(Settings()).openapi()
    ids = collections.Counter(
        operation["operationId"]
        for path in spec["paths"].values()
        for method, operation in path.items()
        if method in ("get", "put", "post", "delete", "patch", "head", "options")
    )
    assert [name for name, count in ids.items() if count > 1] == []
    assert {"verify_webhook", "probe_webhook", "deliver_webhook"} <= set(ids)
