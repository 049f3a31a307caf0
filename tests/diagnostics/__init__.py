"""Tests of the diagnostics app: SSH access, host key pinning, collection, jobs and commands."""
