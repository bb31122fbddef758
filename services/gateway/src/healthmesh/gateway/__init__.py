"""HealthMesh gateway service."""
