"""monitorkit.instrument (being written)."""
