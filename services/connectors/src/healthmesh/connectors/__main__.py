from healthmesh.common.service import serve
from healthmesh.connectors.app import create_app
from healthmesh.connectors.settings import Settings

settings = Settings()
serve("connectors", create_app(settings), settings)
