"""File importers: one module per file kind, each turning a file into raw batches."""
