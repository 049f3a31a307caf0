"""Diagnostics models: collections, facts, health samples, config snapshots, verdicts."""
