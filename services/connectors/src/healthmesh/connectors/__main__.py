from healthmesh.common.service import serve
from healthmesh.connectors.settings import Settings

serve("connectors", "healthmesh.connectors.app:from_environment", Settings())
