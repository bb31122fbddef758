"""The provider registry: one module per provider with its OAuth quirks, resolved here against
this deployment's credentials and (in sandbox mode) the simulator's base URL."""

from healthmesh.auth.oauth import Credentials, Provider, ProviderSpec
from healthmesh.auth.providers import fitbit, oura, strava, whoop, withings
from healthmesh.auth.settings import Settings

SPECS: dict[str, ProviderSpec] = {
    m.SPEC.id: m.SPEC for m in (oura, whoop, fitbit, withings, strava)
}


def registry(settings: Settings) -> dict[str, Provider]:
    """Providers that can be connected: those with credentials, or all of them in sandbox mode
    (simulator credentials `sandbox-<id>` / `sandbox-secret-<id>`)."""
    providers: dict[str, Provider] = {}
    for provider_id, spec in SPECS.items():
        pair = settings.credentials(provider_id)
        if pair is not None:
            providers[provider_id] = Provider(spec, Credentials(*pair), settings.provider_base_url)
    return providers
