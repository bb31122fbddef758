from healthmesh.common.service import serve
from healthmesh.gateway.settings import Settings

serve("gateway", "healthmesh.gateway.app:from_environment", Settings())
