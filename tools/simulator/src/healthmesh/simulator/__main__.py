"""`python -m healthmesh.simulator`: serve the provider simulator (127.0.0.1:8010 by default)."""

import uvicorn

from healthmesh.common.logging import configure_logging
from healthmesh.simulator.app import create_app
from healthmesh.simulator.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("simulator", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
