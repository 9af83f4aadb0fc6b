"""monitorkit.dashboard (being written)."""
