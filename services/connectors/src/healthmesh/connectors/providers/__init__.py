"""One module per provider, each keeping its quirks to itself; registry.py lists them."""
