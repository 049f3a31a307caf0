"""Management commands of the diagnostics app."""
