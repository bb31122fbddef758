"""Rate budgets shared by every connectors process, counted in PostgreSQL.

Each provider limit becomes a budget (per application, or per user), counted in windows aligned
to the epoch as the providers count them. Taking a call is one short transaction: every budget
the call falls under is incremented, or, if one is spent, nothing is and the caller sleeps until
that window ends. A second worker process therefore shares the budget instead of doubling the
rate. What the provider reports in its headers raises our count to its count; a 429 pauses the
budgets until the provider's Retry-After.
"""

import asyncio
import random
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from healthmesh.connectors.providers.base import Limit, Provider


@dataclass(frozen=True)
class _Budget:
    key: str
    capacity: int
    seconds: int
    limit: str


class _Spent(Exception):
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s


class RateBudget:
    def __init__(self, pool: asyncpg.Pool, scale: float = 1.0) -> None:
        """`scale` multiplies every capacity (benchmarks against a simulator with raised limits)."""
        self._pool = pool
        self._scale = scale

    def _budgets(self, provider: Provider, user_id: UUID) -> list[_Budget]:
        return [_budget(provider, limit, user_id, self._scale) for limit in provider.limits]

    async def take(self, provider: Provider, user_id: UUID) -> None:
        """Wait until a call fits every budget, and count it."""
        budgets = self._budgets(provider, user_id)
        while True:
            try:
                await self._try_take(budgets)
                return
            except _Spent as spent:
                await asyncio.sleep(spent.wait_s + random.uniform(0, 0.05))  # noqa: S311

    async def _try_take(self, budgets: list[_Budget]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            paused_s = await conn.fetchval(
                """SELECT extract(epoch FROM max(until) - clock_timestamp())::float8
                   FROM connectors.rate_pauses
                   WHERE budget = ANY($1::text[]) AND until > clock_timestamp()""",
                [b.key for b in budgets],
            )
            if paused_s is not None:
                raise _Spent(paused_s)
            for budget in budgets:
                counted = await conn.fetchval(
                    """INSERT INTO connectors.rate_windows AS w (budget, window_start, used)
                       VALUES ($1, to_timestamp(floor(extract(epoch FROM clock_timestamp())
                                                      / $2) * $2), 1)
                       ON CONFLICT (budget, window_start)
                           DO UPDATE SET used = w.used + 1 WHERE w.used < $3
                       RETURNING used""",
                    budget.key,
                    budget.seconds,
                    budget.capacity,
                )
                if counted is None:
                    raise _Spent(
                        await conn.fetchval(
                            """SELECT ($1 - mod(extract(epoch FROM clock_timestamp())::numeric,
                                              $1))::float8""",
                            budget.seconds,
                        )
                    )

    async def observe(self, provider: Provider, user_id: UUID, used: dict[str, int]) -> None:
        """The provider told us how much of a window is used: never count less than that."""
        for budget in self._budgets(provider, user_id):
            if budget.limit not in used:
                continue
            await self._pool.execute(
                """INSERT INTO connectors.rate_windows AS w (budget, window_start, used)
                   VALUES ($1, to_timestamp(floor(extract(epoch FROM clock_timestamp())
                                                  / $2) * $2), $3)
                   ON CONFLICT (budget, window_start)
                       DO UPDATE SET used = greatest(w.used, EXCLUDED.used)""",
                budget.key,
                budget.seconds,
                used[budget.limit],
            )

    async def pause(self, provider: Provider, user_id: UUID, seconds: float) -> None:
        """The provider answered 429: nobody calls under these budgets for `seconds`."""
        await self._pool.executemany(
            """INSERT INTO connectors.rate_pauses AS p (budget, until)
               VALUES ($1, clock_timestamp() + make_interval(secs => $2))
               ON CONFLICT (budget) DO UPDATE SET until = greatest(p.until, EXCLUDED.until)""",
            [(b.key, seconds) for b in self._budgets(provider, user_id)],
        )

    async def forget_old(self) -> None:
        """Windows and pauses long past: kept only as long as the longest window (a day)."""
        await self._pool.execute(
            "DELETE FROM connectors.rate_windows WHERE window_start < now() - interval '2 days'"
        )
        await self._pool.execute("DELETE FROM connectors.rate_pauses WHERE until < now()")


def _budget(provider: Provider, limit: Limit, user_id: UUID, scale: float) -> _Budget:
    key = f"{provider.name}:{limit.name}" + (f":{user_id}" if limit.per_user else "")
    return _Budget(key, max(1, int(limit.capacity * scale)), limit.seconds, limit.name)
