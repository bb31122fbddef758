"""Print the AsyncAPI document of every HealthMesh topic, generated from the services' brokers.

`make asyncapi` writes it to docs/asyncapi.json; `make test` fails when the file drifts.
Building an app opens nothing, so this needs no database or broker.
"""

import json
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from healthmesh.auth.app import create_app as auth_app
from healthmesh.auth.settings import Settings as AuthSettings
from healthmesh.connectors.app import create_app as connectors_app
from healthmesh.connectors.settings import Settings as ConnectorsSettings
from healthmesh.gateway.app import create_app as gateway_app
from healthmesh.gateway.settings import Settings as GatewaySettings
from healthmesh.normalizer.app import create_app as normalizer_app
from healthmesh.normalizer.settings import Settings as NormalizerSettings
from healthmesh.preferences.app import create_app as preferences_app
from healthmesh.preferences.settings import Settings as PreferencesSettings

# Fixed values, so the document does not depend on this machine's environment.
_FIXED: dict[str, Any] = {"kafka_bootstrap_servers": "kafka:9092", "topic_prefix": ""}


def document() -> str:
    brokers: list[KafkaBroker] = [
        gateway_app(GatewaySettings(**_FIXED)).state.broker,
        auth_app(AuthSettings(**_FIXED)).state.broker,
        connectors_app(ConnectorsSettings(**_FIXED)).state.broker,
        normalizer_app(NormalizerSettings(**_FIXED)).state.broker,
        preferences_app(PreferencesSettings(**_FIXED)).state.broker,
    ]
    spec = AsyncAPI(
        *brokers,
        title="HealthMesh events",
        version="1",
        description="Topics are keyed by user id. Contracts are versioned by their `schema` "
        "field; within a version, changes are additive only.",
        schema_version="3.0.0",
    )
    return json.dumps(json.loads(spec.to_specification().to_json()), indent=2, sort_keys=True)


if __name__ == "__main__":
    print(document())
