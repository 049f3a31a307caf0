"""Which hypervisors the host probes apply to: libvirt and the agent's private bridge exist only on KVM hosts."""

from __future__ import annotations

import pytest

from diagnostics.probes import HOST_PROBES, ROUTER_PROBES


@pytest.mark.parametrize("probe", HOST_PROBES, ids=lambda p: p.name)
def test_it_applies_each_host_probe_on_kvm_only(probe) -> None:
    assert probe.not_applicable_on("KVM") == ""
    assert probe.not_applicable_on("XenServer") == "does not apply on XenServer: only KVM hosts have what it reads"


@pytest.mark.parametrize("probe", ROUTER_PROBES, ids=lambda p: p.name)
def test_it_applies_every_router_probe_on_every_hypervisor(probe) -> None:
    assert [probe.not_applicable_on(h) for h in ("KVM", "XenServer", "VMware", "Hyperv")] == ["", "", "", ""]
