"""`python -m healthmesh.auth`: serve the auth service (port 8001 unless HEALTHMESH_PORT is set)."""

from healthmesh.auth.app import create_app
from healthmesh.auth.settings import Settings
from healthmesh.common.service import serve


def main() -> None:
    settings = Settings()
    serve("auth", create_app(settings), settings)


if __name__ == "__main__":
    main()
