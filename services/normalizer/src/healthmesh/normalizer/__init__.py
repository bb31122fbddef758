"""HealthMesh normalizer service."""
