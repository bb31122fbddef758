from healthmesh.common.service import serve
from healthmesh.gateway.app import create_app
from healthmesh.gateway.settings import Settings

settings = Settings()
serve("gateway", create_app(settings), settings)
