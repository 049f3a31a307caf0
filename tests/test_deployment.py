"""The deployment files: docker-compose.yml parses and names every process of the design."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_names_every_service() -> None:
    services = _compose()["services"]
    for name in (
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker-sync",
        "worker-actions",
        "worker-collect",
        "tail-worker",
        "scheduler",
    ):
        assert name in services, name


def test_the_tail_worker_is_its_own_process_type_not_an_rq_queue() -> None:
    services = _compose()["services"]
    assert services["tail-worker"]["command"] == ["python", "manage.py", "tail_worker"]
    from vrconsole.queues import QUEUE_TIMEOUTS

    assert "tails" not in QUEUE_TIMEOUTS


def test_every_app_service_runs_from_the_one_image() -> None:
    services = _compose()["services"]
    images = {services[name]["image"] for name in services if name not in {"postgres", "redis"}}
    assert images == {"vrconsole:latest"}


def test_long_running_services_have_health_checks() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if name == "migrate":
            continue
        assert "healthcheck" in service, name


def test_workers_cover_every_declared_queue() -> None:
    from vrconsole.queues import QUEUE_TIMEOUTS

    services = _compose()["services"]
    served = set()
    for service in services.values():
        command = service.get("command", [])
        if "rqworker" in command:
            served.update(arg for arg in command[command.index("rqworker") + 1 :] if not arg.startswith("-"))
    assert served == set(QUEUE_TIMEOUTS)


def test_the_web_tier_runs_daphne_on_the_asgi_application() -> None:
    command = _compose()["services"]["web"]["command"]
    assert command[0] == "daphne" and command[-1] == "vrconsole.asgi:application"


def test_secrets_are_not_written_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${SECRET_KEY:?" in text and "${POSTGRES_PASSWORD:?" in text


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "scripts/test" in ci
    assert "scripts/test" in readme and "scripts/run" in readme


def test_secrets_are_mounted_only_where_ssh_or_the_api_is_used() -> None:
    services = _compose()["services"]

    def mounts(name: str) -> str:
        return " ".join(services[name].get("volumes") or [])

    for name in ("migrate", "scheduler"):
        assert "secrets/" not in mounts(name), name
    for name in ("web", "worker-sync"):
        assert "cloudstack.ini" in mounts(name) and "secrets/keys" not in mounts(name), name
    for name in ("worker-collect", "worker-collect-now", "worker-actions", "tail-worker"):
        assert "secrets/keys" in mounts(name), name
    assert "cloudstack.ini" not in mounts("tail-worker")


def test_the_deployment_sets_the_ssh_allow_lists() -> None:
    environment = _compose()["x-app"]["environment"]
    assert environment["SSH_ALLOWED_NETWORKS"].startswith("${SSH_ALLOWED_NETWORKS:?")
    assert "169.254.0.0/16" in environment["SSH_FORWARD_ALLOWED_NETWORKS"]


def test_the_web_healthcheck_passes_against_the_app_with_production_settings(tmp_path: Path) -> None:
    """The compose healthcheck's own command, against daphne with the deployment's defaults.

    HTTPS redirect and ALLOWED_HOSTS=localhost included: /healthz must answer 200 to a request
    by address over plain HTTP, or `web` never becomes healthy.
    """
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in {"PLAIN_HTTP", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "vrconsole.settings", "ALLOWED_HOSTS": "localhost", "DEBUG": "false"})
    env["SECRET_KEY"] = "a-deployment-like-secret-key-of-enough-length"
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "vrconsole.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daphne.log").open("w"),
    )
    try:
        test = _compose()["services"]["web"]["healthcheck"]["test"]
        assert test[0] == "CMD"
        command = [sys.executable if word == "python" else word for word in test[1:]]
        command = [word.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for word in command]
        deadline = time.monotonic() + 30
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
            result = subprocess.run(command, capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, result.stderr[-2000:] + (tmp_path / "daphne.log").read_text()[-2000:]
        # The same server redirects an ordinary page to HTTPS: production settings were in force.
        import urllib.error
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "localhost"})
        try:
            opener.open(request, timeout=5)
            status = 200
        except urllib.error.HTTPError as exc:
            status, location = exc.code, exc.headers.get("Location", "")
        assert status == 301 and location.startswith("https://localhost/")
    finally:
        server.terminate()
        server.wait(10)
