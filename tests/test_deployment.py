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
