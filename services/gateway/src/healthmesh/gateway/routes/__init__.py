"""The gateway's routes, one module per part of the public API (../shared/API.md)."""
