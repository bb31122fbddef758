from healthmesh.common.service import serve
from healthmesh.normalizer.settings import Settings

serve("normalizer", "healthmesh.normalizer.app:from_environment", Settings())
