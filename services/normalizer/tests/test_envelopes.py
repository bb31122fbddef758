"""Reading a raw message's envelope (handlers.read_envelope): the same envelope pydantic reads
from the whole JSON, and a reason for whatever is not one."""

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from healthmesh.common.events import RawPayloadReceived, TimeWindow, dump
from healthmesh.normalizer.handlers import NotAnEnvelope, read_envelope


def _envelope_json(payload: object) -> bytes:
    envelope = RawPayloadReceived(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        source="apple_health",
        resource="export",
        fetched_at=datetime(2024, 3, 1, 7, 15, tzinfo=UTC),
        window=TimeWindow(
            start=datetime(2024, 2, 1, tzinfo=UTC), end=datetime(2024, 3, 1, tzinfo=UTC)
        ),
        import_id=uuid.uuid4(),
        payload=None,
    )
    return orjson.dumps({**dump(envelope), "payload": payload})


@pytest.mark.parametrize(
    "payload",
    [
        {"records": [{"kind": "record", "value": "72", "line": 3, "metadata": {}}]},
        [1, 2.5, "x", None, True, {"nested": [[]]}],
        None,
        "text",
    ],
)
def test_the_envelope_is_the_one_pydantic_reads_from_the_whole_json(payload: object) -> None:
    body = _envelope_json(payload)
    assert read_envelope(body) == RawPayloadReceived.model_validate_json(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"schema": "raw.v1", "id": "nope", "payload": {}}', "id: "),
        (orjson.dumps({"schema": "raw.v2"}), "payload: Field required"),
    ],
)
def test_what_is_not_an_envelope_is_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(NotAnEnvelope, match=reason):
        read_envelope(body)


def test_a_wrong_schema_version_is_refused() -> None:
    document = orjson.loads(_envelope_json({}))
    document["schema"] = "raw.v2"
    with pytest.raises(NotAnEnvelope, match="schema"):
        read_envelope(orjson.dumps(document))
