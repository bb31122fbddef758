"""withings: raw payloads as the connectors publish them, to unified samples (being written)."""

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import MappingResult, UnmappablePayload


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    raise UnmappablePayload(f"withings resource {envelope.resource!r} has no mapper")
