"""`python -m healthmesh.preferences`: serve the preferences service (port 8004 by default)."""

from healthmesh.common.service import serve
from healthmesh.preferences.settings import Settings

serve("preferences", "healthmesh.preferences.app:from_environment", Settings())
