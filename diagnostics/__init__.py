"""Diagnostics: everything that looks inside a router (SSH access, probes, parsers, the matrix, jobs, consumers, charts)."""
