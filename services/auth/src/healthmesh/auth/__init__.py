"""HealthMesh auth service."""
