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
        client_id = getattr(settings, f"{provider_id}_client_id")
        client_secret = getattr(settings, f"{provider_id}_client_secret")
        if client_id and client_secret:
            credentials = Credentials(client_id, client_secret)
        elif settings.provider_base_url:
            credentials = Credentials(f"sandbox-{provider_id}", f"sandbox-secret-{provider_id}")
        else:
            continue
        providers[provider_id] = Provider(spec, credentials, settings.provider_base_url)
    return providers
