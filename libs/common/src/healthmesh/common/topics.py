"""Every Kafka topic HealthMesh uses, in one place. Messages are keyed by user id."""

from dataclasses import dataclass

IMPORTS_REQUESTED = "imports.requested"
METRICS_UNIFIED = "metrics.unified"
CONNECTIONS_CHANGED = "connections.changed"
PREFERENCES_CHANGED = "preferences.changed"

RAW_SOURCES = (
    "csv",
    "apple_health",
    "cronometer",
    "myfitnesspal",
    "oura",
    "whoop",
    "fitbit",
    "withings",
    "strava",
)


def raw_topic(source: str) -> str:
    return f"raw.{source}"


def dlq_topic(topic: str) -> str:
    return f"dlq.{topic}"


@dataclass(frozen=True)
class Topics:
    """Topic names with the deployment's prefix applied (empty in production by default)."""

    prefix: str = ""

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def imports_requested(self) -> str:
        return self.name(IMPORTS_REQUESTED)

    @property
    def metrics_unified(self) -> str:
        return self.name(METRICS_UNIFIED)

    @property
    def connections_changed(self) -> str:
        return self.name(CONNECTIONS_CHANGED)

    @property
    def preferences_changed(self) -> str:
        return self.name(PREFERENCES_CHANGED)

    def raw(self, source: str) -> str:
        return self.name(raw_topic(source))

    def dlq(self, base_topic: str) -> str:
        """Dead-letter topic for an unprefixed base topic such as `raw.csv`."""
        return self.name(dlq_topic(base_topic))

    def all(self) -> list[str]:
        raws = [raw_topic(s) for s in RAW_SOURCES]
        bases = [
            IMPORTS_REQUESTED,
            METRICS_UNIFIED,
            CONNECTIONS_CHANGED,
            PREFERENCES_CHANGED,
            *raws,
            *(dlq_topic(t) for t in raws),
        ]
        return [self.name(b) for b in bases]
