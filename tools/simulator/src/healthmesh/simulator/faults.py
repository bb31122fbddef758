"""Faults on demand: the next n calls to a provider (optionally under a path) fail a chosen way."""

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "status_500", "status_503", "timeout", "malformed_json", "rate_limit", "unauthorized"
]


@dataclass
class Fault:
    provider: str
    path_prefix: str
    kind: FaultKind
    remaining: int


class Faults:
    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def reset(self) -> None:
        self.pending.clear()

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def take(self, provider: str, path: str) -> FaultKind | None:
        """The kind of the first armed fault matching this call, spending one of its count."""
        for fault in self.pending:
            if fault.provider == provider and path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.pending.remove(fault)
                return fault.kind
        return None
