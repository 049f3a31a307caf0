"""The management-server log lines naming a router: the pure parser, the fixed command, and a real read over SSH.

The "management server" is a real OpenSSH server on loopback (tests/diagnostics/conftest.py's
host sshd) and its log is the file the simulator writes when a router start fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devcloud.simulator.server import RunningSimulator
from diagnostics.evaluate import evaluate_router
from diagnostics.failure_evidence import gather_failure_evidence
from diagnostics.management_log import grep_command, parse_entries, read_management_log, select_entries
from diagnostics.models import FailureEvidence
from tests.diagnostics.actions.support import pick
from tests.diagnostics.conftest import HOST_ADDRESS, SILENT_ADDRESS, ClientKeys, SshServer
from vrconsole.models import Region, Router
from vrconsole.sync import sync_router

LOG = """\
2025-03-06 14:21:10,101 INFO  [c.c.n.r.VirtualNetworkApplianceManagerImpl] (Work-Job-Executor-1:ctx-1 job-9/job-10) (logid:1) Starting router r-12-VM
--
2025-03-06 14:21:12,953 ERROR [c.c.v.VirtualMachineManagerImpl] (Work-Job-Executor-1:ctx-1 job-9/job-10) (logid:1) Unable to orchestrate start of r-12-VM
com.cloud.exception.InsufficientServerCapacityException: Unable to create a deployment for VM[DomainRouter|r-12-VM]
\tat com.cloud.vm.VirtualMachineManagerImpl.orchestrateStart(VirtualMachineManagerImpl.java:1442)
2025-03-06 16:00:00,000 INFO  [c.c.a.ApiServer] (qtp-1) (logid:2) r-12-VM listed\x1b[31m
"""


def test_it_groups_each_entry_with_its_exception_and_stack() -> None:
    entries = parse_entries(LOG)
    assert [e.level for e in entries] == ["INFO", "ERROR", "INFO"]
    assert entries[1].lines[1].startswith("com.cloud.exception.InsufficientServerCapacityException")
    assert entries[1].at == datetime(2025, 3, 6, 14, 21, 12, tzinfo=UTC)
    assert "\x1b" not in entries[2].text


def test_it_keeps_the_entries_around_the_failure_or_else_the_newest() -> None:
    entries = parse_entries(LOG)
    around = datetime(2025, 3, 6, 14, 21, 13, tzinfo=UTC)
    kept, in_window = select_entries(entries, around, timedelta(minutes=30), timedelta(minutes=10), 40)
    assert in_window and [e.level for e in kept] == ["INFO", "ERROR"]
    kept, in_window = select_entries(
        entries, around - timedelta(days=3), timedelta(minutes=30), timedelta(minutes=10), 1
    )
    assert not in_window and kept == entries[-1:]


def test_it_builds_one_fixed_command_from_validated_values_only() -> None:
    command = grep_command(
        "r-12-VM", "06e44edf-d024-4e4c-85b3-b5d31ad8df8e", "/var/log/cloudstack/management/management-server.log"
    )
    assert command.startswith("grep -F -A 12 -e r-12-VM -e 06e44edf-d024-4e4c-85b3-b5d31ad8df8e -- ")
    assert "| tail -n 5000 | cut -c 1-1000" in command
    with pytest.raises(ValueError):
        grep_command("r-12-VM; rm -rf /", "06e44edf-d024-4e4c-85b3-b5d31ad8df8e", "/x")
    with pytest.raises(ValueError):
        grep_command("r-12-VM", "$(reboot)", "/x")
    assert "'/tmp/odd path'" in grep_command("r-12-VM", "06e44edf-d024-4e4c-85b3-b5d31ad8df8e", "/tmp/odd path")


@pytest.fixture
def management_server(
    settings: Any, host_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path, sim: RunningSimulator
) -> Path:
    """The loopback sshd plays the management server; its log is the simulator's."""
    settings.MANAGEMENT_SERVERS = [HOST_ADDRESS]
    settings.MANAGEMENT_SSH_PORT = host_sshd.port
    settings.MANAGEMENT_SSH_USER = "root"
    settings.MANAGEMENT_SSH_KEY_FILE = str(client_keys.host)
    settings.MANAGEMENT_LOG_FILE = str(sim.cloud.management_log.path)
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_CONNECT_TIMEOUT = 2.0
    return Path(settings.MANAGEMENT_LOG_FILE)


@pytest.mark.django_db
def test_it_reads_the_exception_of_a_failed_start_over_ssh(
    sim: RunningSimulator, synced: Region, management_server: Path, settings: Any
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.break_router(router.uuid)
    report = read_management_log(router.name, router.uuid, datetime.now(UTC))
    [server] = report["servers"]
    assert report["configured"] and server["status"] == "ok" and server["in_window"]
    lines = [line for entry in server["entries"] for line in entry["lines"]]
    assert (
        f"com.cloud.exception.InsufficientServerCapacityException: Unable to create a deployment for VM[DomainRouter|{router.name}]"
        in lines
    )


@pytest.mark.django_db
def test_the_triage_brings_the_log_lines_into_the_verdict(
    sim: RunningSimulator, synced: Region, management_server: Path
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.break_router(router.uuid)
    sync_router(router)
    router = Router.objects.get(pk=router.pk)
    evidence = gather_failure_evidence(FailureEvidence.objects.create(router=router))
    assert evidence.status == "complete", evidence.unknown
    [verdict] = [v for v in evaluate_router(router).verdicts if v.rule == "router-in-error-state"]
    assert any(line.startswith("management-server log (management server 127.0.0.2)") for line in verdict.evidence)


@pytest.mark.django_db
def test_a_server_that_cannot_be_reached_is_unknown_not_silent(
    settings: Any, tmp_path: Path, client_keys: ClientKeys
) -> None:
    settings.MANAGEMENT_SERVERS = [SILENT_ADDRESS]
    settings.MANAGEMENT_SSH_PORT = 1
    settings.MANAGEMENT_SSH_KEY_FILE = str(client_keys.host)
    settings.SSH_CONNECT_TIMEOUT = 1.0
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    report = read_management_log("r-12-VM", "06e44edf-d024-4e4c-85b3-b5d31ad8df8e", None)
    [server] = report["servers"]
    assert server["status"] == "unknown" and "127.0.0.9" in server["error"]


@pytest.mark.django_db
def test_a_missing_log_file_is_reported_with_greps_complaint(
    sim: RunningSimulator, synced: Region, management_server: Path, settings: Any
) -> None:
    settings.MANAGEMENT_LOG_FILE = "/nonexistent/management-server.log"
    report = read_management_log("r-12-VM", "06e44edf-d024-4e4c-85b3-b5d31ad8df8e", None)
    [server] = report["servers"]
    assert server["status"] == "unknown" and "No such file or directory" in server["error"]


def test_nothing_is_read_when_no_server_is_configured(settings: Any) -> None:
    settings.MANAGEMENT_SERVERS = []
    assert read_management_log("r-12-VM", "06e44edf-d024-4e4c-85b3-b5d31ad8df8e", None) == {
        "configured": False,
        "file": settings.MANAGEMENT_LOG_FILE,
        "servers": [],
    }
