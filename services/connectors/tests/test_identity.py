"""Oura, WHOOP and Google name users in webhooks by an id their token answers do not carry:
each provider's identity call must give exactly the id its webhooks use."""

from collections.abc import Awaitable, Callable

import httpx
import pytest

from healthmesh.connectors.provider_http import ProviderHttp
from healthmesh.connectors.providers.base import Provider
from healthmesh.connectors.providers.fitbit import PROVIDER as FITBIT
from healthmesh.connectors.providers.oura import PROVIDER as OURA
from healthmesh.connectors.providers.whoop import PROVIDER as WHOOP

ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]

WEBHOOK_ID = {"oura": "user_id", "whoop": "user_id", "fitbit": "healthUserId"}
"""The simulator's name for the id each provider's webhooks carry."""


@pytest.mark.parametrize("provider", [OURA, WHOOP, FITBIT], ids=lambda p: p.name)
async def test_the_identity_call_gives_the_id_webhooks_carry(
    provider: Provider, provider_http: ProviderHttpFactory, sim: httpx.AsyncClient
) -> None:
    assert provider.identity is not None
    found = {}
    for person in ("ada", "grace"):
        http = await provider_http(provider, person)
        found[person] = provider.identity.read(await http.send(provider.identity.call))
        known = (await sim.get(f"/_control/users/{person}")).json()[provider.name]
        assert found[person] == str(known[WEBHOOK_ID[provider.name]])
    assert found["ada"] != found["grace"]
