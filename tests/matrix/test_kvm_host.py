"""The KVM-host rules: cloud0, the router's control tap, its libvirt domain, its qemu log."""

from __future__ import annotations

from diagnostics.matrix.rules import kvm_host
from diagnostics.probes import host_side
from tests.matrix.builders import changed, context, isolated_router, parsed


def test_it_reports_cloud0_down_with_the_route_error() -> None:
    [verdict] = kvm_host.CLOUD0.check(context(facts={"host_cloud0": parsed("host_cloud0", "bridge_down")}))
    assert verdict.severity == "critical"
    assert "kvm-1: ip route get 169.254.3.93: RTNETLINK answers: Network is unreachable" in verdict.evidence


def test_it_reports_cloud0_without_its_address() -> None:
    cloud0 = changed(parsed("host_cloud0", "healthy"), addresses=("169.254.0.2/16",))
    [verdict] = kvm_host.CLOUD0.check(context(facts={"host_cloud0": cloud0}))
    assert "kvm-1: cloud0 addresses 169.254.0.2/16 (no 169.254.0.1)" in verdict.evidence


def test_it_reports_a_host_without_cloud0() -> None:
    cloud0 = host_side.parse_cloud0(
        '==> bridge_name <==\ncloud0\n==> bridge <==\nDevice "cloud0" does not exist.\n==> route <==\n[{"dst":"169.254.3.93","dev":"eth0"}]\n'
    )
    [verdict] = kvm_host.CLOUD0.check(context(facts={"host_cloud0": cloud0}))
    assert "kvm-1: ip addr show dev cloud0: no such device" in verdict.evidence


def test_it_says_nothing_of_a_healthy_cloud0() -> None:
    assert kvm_host.CLOUD0.check(context(facts={"host_cloud0": parsed("host_cloud0", "healthy")})) == []


def test_it_reports_a_control_tap_not_on_cloud0() -> None:
    [verdict] = kvm_host.TAP.check(context(facts={"host_tap": parsed("host_tap", "control_tap_not_on_cloud0")}))
    assert verdict.evidence[0] == "vnet7 (source cloud0 in the domain) is not a port of cloud0"


def test_it_says_nothing_of_an_attached_control_tap() -> None:
    assert kvm_host.TAP.check(context(facts={"host_tap": parsed("host_tap", "attached")})) == []


def test_it_reports_a_running_router_whose_domain_is_shut_off() -> None:
    [verdict] = kvm_host.DOMAIN.check(
        context(isolated_router(), {"host_domstate": parsed("host_domstate", "shut_off_crashed")})
    )
    assert verdict.evidence[0] == "virsh domstate --reason r-12-VM: shut off (crashed)"


def test_it_reports_a_running_router_libvirt_does_not_know() -> None:
    [verdict] = kvm_host.DOMAIN.check(
        context(isolated_router(), {"host_domstate": parsed("host_domstate", "no_such_domain")})
    )
    assert verdict.title == "libvirt has no domain r-12-VM on kvm-1"


def test_it_says_nothing_when_virsh_fails_for_another_reason() -> None:
    domstate = host_side.parse_domstate("error: failed to connect to the hypervisor\nerror: Failed to connect socket\n")
    assert kvm_host.DOMAIN.check(context(isolated_router(), {"host_domstate": domstate})) == []


def test_it_accepts_a_stopped_router_whose_domain_is_shut_off() -> None:
    ctx = context(isolated_router(state="Stopped"), {"host_domstate": parsed("host_domstate", "shut_off_crashed")})
    assert kvm_host.DOMAIN.check(ctx) == []


def test_it_reports_a_tap_failure_in_the_qemu_log() -> None:
    log = host_side.parse_qemu_log(
        "|2025-03-18T21:40:02.345678Z qemu-system-x86_64: -netdev tap,fd=34,id=hostnet1: could not open /dev/net/tun: error\n"
    )
    [verdict] = kvm_host.QEMU.check(context(facts={"host_qemu_log": log}))
    assert verdict.title == "qemu log reports errors (tap/network device)"
    assert verdict.severity == "warning"


def test_it_ignores_the_lines_of_an_ordinary_stop() -> None:
    assert kvm_host.QEMU.check(context(facts={"host_qemu_log": parsed("host_qemu_log", "destroyed")})) == []


def test_it_names_the_agents_private_bridge_in_the_verdict() -> None:
    facts = changed(parsed("host_cloud0", "bridge_down"), bridge="cloudbr-ctl")
    [verdict] = kvm_host.CLOUD0.check(context(isolated_router(), {"host_cloud0": facts}))
    assert verdict.title.startswith("cloudbr-ctl bridge broken on")
