"""Code the HealthMesh services share. Nothing here opens a connection at import time."""
