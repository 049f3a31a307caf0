"""PostgreSQL briefly down: pages answer a clear 503 page, the health endpoints say what is down, and all recovers.

The shared PostgreSQL of the machine is never touched: the test makes a PostgreSQL cluster of
its own (initdb into a temporary directory, pg_ctl on a free loopback port, run as the
`postgres` user as PostgreSQL requires), migrates a database there, serves the console from
daphne on it, stops the cluster under a signed-in page, then starts it again.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PG_BIN is None or os.geteuid() != 0, reason="needs PostgreSQL's binaries and root"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnCluster:
    """A PostgreSQL cluster of this test only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = _free_port()
        postgres = pwd.getpwnam("postgres")
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, postgres.pw_uid, postgres.pw_gid)
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])

    def _as_postgres(self, argv: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.directory / "log"),
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/vrconsole_outage"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[OwnCluster]:
    base = Path("/tmp") / f"vrc-pg-{os.getpid()}-{tmp_path.name}"
    own = OwnCluster(base)
    own.start()
    try:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(own.port),
                "vrconsole_outage",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield own
    finally:
        try:
            own.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped by the test
        shutil.rmtree(base, ignore_errors=True)


def _get(url: str, cookie: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_pages_answer_503_while_the_database_is_down_and_recover(cluster: OwnCluster, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": cluster.url,
            "DATABASE_CONNECT_TIMEOUT": "2",
            "ALLOWED_HOSTS": "127.0.0.1",
            "PLAIN_HTTP": "true",
        }
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    session = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup();"
            "from django.contrib.auth import get_user_model; from django.test import Client;"
            "u = get_user_model().objects.create_user('outage', password='outage-password-1');"
            "c = Client(); c.force_login(u); print(c.cookies['sessionid'].value)",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()
    cookie = f"sessionid={session}"
    port = _free_port()
    log = (tmp_path / "daphne.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "vrconsole.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        status, body = _get(f"{base}/", cookie)
        assert status == 200 and "VR Console" in body

        cluster.stop()
        status, body = _get(f"{base}/", cookie)
        assert status == 503, body[-2000:]
        assert "cannot reach its database" in body and "Traceback" not in body
        assert _get(f"{base}/healthz")[0] == 200  # liveness: the process is fine
        ready_status, ready = _get(f"{base}/readyz")
        assert ready_status == 503 and '"database": {"ok": false}' in ready

        cluster.start()
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline:
            status, body = _get(f"{base}/", cookie)
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200 and "VR Console" in body
        assert '"database": {"ok": true}' in _get(f"{base}/readyz")[1]
    finally:
        server.terminate()
        server.wait(10)


def test_a_worker_outlives_the_outage_and_its_next_job_succeeds(cluster: OwnCluster, tmp_path: Path) -> None:
    """An RQ worker whose job meets a stopped database records the failure and runs the next job once it is back."""
    import redis
    from rq import Queue
    from rq.job import Job, JobStatus

    redis_port = _free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": cluster.url,
            "DATABASE_CONNECT_TIMEOUT": "2",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        connection = redis.Redis(port=redis_port)
        queue = Queue("default", connection=connection)

        def finished(job: Job, seconds: float = 60) -> JobStatus:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                status = job.get_status(refresh=True)
                if status in {JobStatus.FINISHED, JobStatus.FAILED}:
                    return status
                time.sleep(0.2)
            raise AssertionError(
                f"job {job.id} still {job.get_status()}: {(tmp_path / 'worker.log').read_text()[-2000:]}"
            )

        assert finished(queue.enqueue("diagnostics.jobs.record_history")) == JobStatus.FINISHED
        cluster.stop()
        failed = queue.enqueue("diagnostics.jobs.record_history")
        assert finished(failed) == JobStatus.FAILED
        assert "OperationalError" in (failed.latest_result().exc_string or "")
        cluster.start()
        assert worker.poll() is None, "the worker died with the database"
        assert finished(queue.enqueue("diagnostics.jobs.record_history")) == JobStatus.FINISHED
    finally:
        worker.terminate()
        worker.wait(20)
        redis_server.kill()
        redis_server.wait(10)
