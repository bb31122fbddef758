"""Runs HealthMesh on one machine and in tests: embedded PostgreSQL, Tansu, the services."""
