"""Tests for the lab host's virsh shim, run as a plain script against a domain list file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devcloud.lab.kvm_host import write_domains
from devcloud.lab.router_files import rendered


def _virsh(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    domains = tmp_path / "domains.json"
    if not domains.exists():
        write_domains(
            domains,
            [
                {"name": "r-4-VM", "state": "running", "reason": "booted"},
                {"name": "r-5-VM", "state": "shut off", "reason": "failed"},
                {"name": "r-6-VM", "state": "shut off"},
            ],
        )
    shim = tmp_path / "virsh"
    shim.write_bytes(rendered("host/usr/local/bin/virsh.tmpl", domains_path=domains).content)
    shim.chmod(0o755)
    return subprocess.run([str(shim), *argv], capture_output=True, text=True, timeout=10, check=False)


def test_it_answers_domstate_with_the_reason_when_asked(tmp_path: Path) -> None:
    assert _virsh(tmp_path, "domstate", "--reason", "r-4-VM").stdout.strip() == "running (booted)"


def test_it_answers_the_recorded_failure_reason(tmp_path: Path) -> None:
    assert _virsh(tmp_path, "domstate", "--reason", "r-5-VM").stdout.strip() == "shut off (failed)"


def test_it_falls_back_to_virshs_reason_for_a_state(tmp_path: Path) -> None:
    assert _virsh(tmp_path, "domstate", "r-6-VM", "--reason").stdout.strip() == "shut off (destroyed)"


def test_it_answers_plain_domstate_without_a_reason(tmp_path: Path) -> None:
    assert _virsh(tmp_path, "domstate", "r-4-VM").stdout.strip() == "running"


def test_it_refuses_an_unknown_domain_like_virsh(tmp_path: Path) -> None:
    completed = _virsh(tmp_path, "domstate", "--reason", "r-9-VM")
    assert completed.returncode == 1
    assert completed.stderr.strip() == "error: failed to get domain 'r-9-VM'"


def test_it_lists_shut_off_domains_only_with_all(tmp_path: Path) -> None:
    assert "r-5-VM" not in _virsh(tmp_path, "list").stdout
    assert "r-5-VM" in _virsh(tmp_path, "list", "--all").stdout
