"""Fixed-window request counters, aligned to the epoch (so Strava's reset at :00/:15/:30/:45 and
at midnight UTC come out right)."""

from dataclasses import dataclass

from healthmesh.simulator.clock import Clock


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


@dataclass(frozen=True)
class Usage:
    window: Window
    used: int
    reset_in: int  # seconds until this window starts over

    @property
    def remaining(self) -> int:
        return max(0, self.window.limit - self.used)

    @property
    def exceeded(self) -> bool:
        return self.used > self.window.limit


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.counts: dict[tuple[str, int], tuple[int, int]] = {}  # (key, window) -> (slot, n)

    def reset(self) -> None:
        self.counts.clear()

    def hit(self, key: str, windows: tuple[Window, ...]) -> list[Usage]:
        """Count one request in every window (over-limit requests count too, as at Strava)."""
        now = self.clock.now()
        usages = []
        for window in windows:
            slot = int(now // window.seconds)
            current, used = self.counts.get((key, window.seconds), (slot, 0))
            used = used + 1 if current == slot else 1
            self.counts[(key, window.seconds)] = (slot, used)
            reset_in = int((slot + 1) * window.seconds - now) or 1
            usages.append(Usage(window=window, used=used, reset_in=reset_in))
        return usages
