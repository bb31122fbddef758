"""The provider connectors by name, and the API host each one calls."""

from healthmesh.connectors.providers import fitbit, oura, strava, whoop, withings
from healthmesh.connectors.providers.base import Provider

PROVIDERS: dict[str, Provider] = {
    module.PROVIDER.name: module.PROVIDER for module in (oura, whoop, fitbit, withings, strava)
}

REAL_BASE_URLS = {
    "oura": "https://api.ouraring.com",
    "whoop": "https://api.prod.whoop.com",
    "fitbit": "https://health.googleapis.com",
    "withings": "https://wbsapi.withings.net",
    "strava": "https://www.strava.com",
}
"""API hosts; each provider module's calls carry the real paths under them."""
