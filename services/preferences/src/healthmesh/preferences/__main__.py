"""`python -m healthmesh.preferences`: serve the preferences service (port 8004 by default)."""

from healthmesh.common.service import serve
from healthmesh.preferences.app import create_app
from healthmesh.preferences.settings import Settings


def main() -> None:
    settings = Settings()
    serve("preferences", create_app(settings), settings)


if __name__ == "__main__":
    main()
