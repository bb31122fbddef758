"""HealthMesh connectors service."""
