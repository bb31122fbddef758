"""From one raw payload to unified samples: the mapper per source, and what every mapper returns.

Mappers are pure functions, one module per source under `sources/`, each keeping its source's
quirks to itself. A mapper that meets a bad record rejects that record (with where and why) and
maps the rest; a payload it cannot read at all raises `UnmappablePayload` and goes to the DLQ.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from healthmesh.common.events import MetricSample, RawPayloadReceived


class UnmappablePayload(ValueError):
    """The payload as a whole cannot be mapped; the reason goes with it to the DLQ."""


@dataclass(frozen=True)
class Rejection:
    where: str
    reason: str


@dataclass
class MappingResult:
    samples: list[MetricSample] = field(default_factory=list)
    records_seen: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def records_rejected(self) -> int:
        return len(self.rejections)

    @property
    def records_imported(self) -> int:
        return self.records_seen - self.records_rejected


Mapper = Callable[[RawPayloadReceived], MappingResult]


def mappers() -> dict[str, Mapper]:
    """Mapper per source id. Sources without a mapper yet send their payloads to the DLQ."""
    from healthmesh.normalizer.sources import csv

    return {"csv": csv.map_rows}


def map_payload(envelope: RawPayloadReceived, registry: dict[str, Mapper]) -> MappingResult:
    mapper = registry.get(envelope.source)
    if mapper is None:
        raise UnmappablePayload(f"no mapper for source {envelope.source!r}")
    return mapper(envelope)
