"""The probe registry: unique names, constant bounded router commands, host probes behind validation."""

from __future__ import annotations

from diagnostics.probes import EVIDENCE_PROBES, HOST_PROBES, PROBES_BY_NAME, ROUTER_PROBES


def test_it_names_every_probe_once() -> None:
    names = [p.name for p in ROUTER_PROBES + HOST_PROBES + EVIDENCE_PROBES]
    assert len(names) == len(set(names)) == len(PROBES_BY_NAME)


def test_it_keeps_evidence_probes_out_of_the_sweep() -> None:
    assert not {p.name for p in EVIDENCE_PROBES} & {p.name for p in ROUTER_PROBES + HOST_PROBES}
    assert all(p.scope == "router" and p.command and p.timeout > 0 for p in EVIDENCE_PROBES)


def test_it_gives_router_probes_a_constant_command_and_a_timeout() -> None:
    assert all(p.scope == "router" and p.command and p.host_command is None and p.timeout > 0 for p in ROUTER_PROBES)


def test_it_never_uses_lsof_or_jq_on_a_router() -> None:
    assert not any(word in p.command for p in ROUTER_PROBES for word in ("lsof", "jq "))


def test_it_builds_host_commands_only_through_host_command() -> None:
    assert all(p.scope == "host" and p.host_command is not None for p in HOST_PROBES)


def test_it_puts_the_validated_instance_name_in_the_host_command() -> None:
    command = PROBES_BY_NAME["host_tap"].command_line("r-12-VM", "169.254.3.93")
    assert "virsh domiflist r-12-VM" in command
