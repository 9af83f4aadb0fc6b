"""monitorkit.rules (being written)."""
