"""Plumbing shared by the benchmarks (not a benchmark itself): a throwaway PostgreSQL
database on the test server, free loopback ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]

# Every benchmark drives the dev cloud (simulator, lab): install its app, like scripts/test.
os.environ["VRCONSOLE_DEVCLOUD"] = "true"


def base_database_url() -> str:
    """BENCH_DATABASE_URL, or the URL scripts/setup chose for the tests, or the local default."""
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    stored = ROOT / ".venv" / ".test-database-url"
    if stored.exists():
        return stored.read_text().strip()
    return "postgres://postgres@127.0.0.1:5432/vrconsole"


def with_db(url: str, name: str) -> str:
    """The same server URL naming another database."""
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def admin_sql(url: str, sql: str) -> None:
    """Run one statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
