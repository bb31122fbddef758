from healthmesh.common.service import serve
from healthmesh.normalizer.app import create_app
from healthmesh.normalizer.settings import Settings

settings = Settings()
serve("normalizer", create_app(settings), settings)
