"""Road networks, datums, projections, snapping and shortest paths (imports nothing of ours)."""
