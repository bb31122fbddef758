"""One module per source; each exposes pure mapping functions."""
