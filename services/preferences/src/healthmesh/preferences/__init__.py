"""HealthMesh preferences service."""
