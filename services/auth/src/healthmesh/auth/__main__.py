"""`python -m healthmesh.auth`: serve the auth service (port 8001 unless HEALTHMESH_PORT is set)."""

from healthmesh.auth.settings import Settings
from healthmesh.common.service import serve

serve("auth", "healthmesh.auth.app:from_environment", Settings())
