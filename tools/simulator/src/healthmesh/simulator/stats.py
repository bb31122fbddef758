"""What the simulator saw: calls per endpoint, token calls per grant type, 429s and faults."""

from collections import Counter, defaultdict
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.token_calls: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter()

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": {p: dict(c) for p, c in self.calls.items()},
            "token_calls": {p: dict(c) for p, c in self.token_calls.items()},
            "rate_limited": dict(self.rate_limited),
            "faults": dict(self.faults),
            "webhooks": dict(self.webhooks),
        }
