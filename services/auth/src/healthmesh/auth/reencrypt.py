"""`python -m healthmesh.auth.reencrypt`: re-seal every provider token under the active key.

Key rotation without downtime: add the new key to HEALTHMESH_TOKEN_KEYS (keeping the old one),
make it HEALTHMESH_TOKEN_ACTIVE_KEY and restart auth (new tokens use it, old ones still open),
run this command, then remove the old key.
"""

import asyncio

import httpx

from healthmesh.auth.app import token_cipher
from healthmesh.auth.connections import Connections
from healthmesh.auth.settings import Settings
from healthmesh.common.db import open_pool
from healthmesh.common.outbox import Outbox


async def reencrypt(settings: Settings) -> int:
    pool = await open_pool(settings.database_url, max_size=2)
    try:
        async with httpx.AsyncClient() as http:
            connections = Connections(
                pool, http, {}, token_cipher(settings), Outbox("auth"), settings
            )
            return await connections.reseal_all()
    finally:
        await pool.close()


def main() -> None:
    settings = Settings()
    count = asyncio.run(reencrypt(settings))
    print(f"re-encrypted {count} connection(s) under key {settings.token_active_key!r}")


if __name__ == "__main__":
    main()
