"""What every part of one simulator process shares: settings, clock, counters, an HTTP client."""

from dataclasses import dataclass, field

import httpx

from healthmesh.simulator.clock import Clock
from healthmesh.simulator.faults import Faults
from healthmesh.simulator.ratelimit import RateLimiter
from healthmesh.simulator.settings import Settings
from healthmesh.simulator.stats import Stats


@dataclass
class Context:
    settings: Settings
    clock: Clock
    http: httpx.AsyncClient | None
    stats: Stats = field(default_factory=Stats)
    faults: Faults = field(default_factory=Faults)
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.clock)

    def reset(self) -> None:
        self.stats.reset()
        self.faults.reset()
        self.limiter.reset()
