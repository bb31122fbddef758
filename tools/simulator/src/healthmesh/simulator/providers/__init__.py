"""The five simulated providers, one module each (plus a `_data` module for its documents)."""

from healthmesh.simulator.context import Context
from healthmesh.simulator.providers.base import Provider
from healthmesh.simulator.providers.fitbit import Fitbit
from healthmesh.simulator.providers.oura import Oura
from healthmesh.simulator.providers.strava import Strava
from healthmesh.simulator.providers.whoop import Whoop
from healthmesh.simulator.providers.withings import Withings


def make_providers(ctx: Context) -> dict[str, Provider]:
    providers: list[Provider] = [Oura(ctx), Whoop(ctx), Fitbit(ctx), Withings(ctx), Strava(ctx)]
    return {p.name: p for p in providers}
