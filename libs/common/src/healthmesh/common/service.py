"""Running one service process: logging, then uvicorn serving the app the service built."""

import uvicorn
from fastapi import FastAPI

from healthmesh.common.logging import configure_logging
from healthmesh.common.settings import SERVICE_PORTS, CommonSettings


def serve(service: str, app: FastAPI, settings: CommonSettings) -> None:
    """Serve `app` until SIGINT/SIGTERM; the app's lifespan opens and closes its resources."""
    configure_logging(service, settings.log_level)
    port = settings.port or SERVICE_PORTS[service]
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
