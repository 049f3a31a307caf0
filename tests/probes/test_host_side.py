"""Host probes: commands built only from validated, quoted identity; libvirt output parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.probes import PROBES_BY_NAME, host_side

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("name", ["r-12-VM; reboot", "../../etc/passwd", "r-12-VM$(id)", ""])
def test_it_refuses_an_instance_name_that_is_not_cloudstacks(name: str) -> None:
    with pytest.raises(ValueError):
        PROBES_BY_NAME["host_domstate"].command_line(name, "169.254.3.93")


@pytest.mark.parametrize("address", ["169.254.3.93; reboot", "$(id)", "169.254.3"])
def test_it_refuses_an_address_that_is_not_an_ip(address: str) -> None:
    with pytest.raises(ValueError):
        PROBES_BY_NAME["host_cloud0"].command_line("r-12-VM", address)


def test_it_builds_the_qemu_log_path_from_the_instance_name() -> None:
    command = PROBES_BY_NAME["host_qemu_log"].command_line("r-12-VM", "169.254.3.93")
    assert "/var/log/libvirt/qemu/r-12-VM.log" in command


def test_it_reads_state_and_reason() -> None:
    facts = host_side.parse_domstate("shut off (crashed)\n")
    assert (facts.state, facts.reason, facts.error) == ("shut off", "crashed", "")


def test_it_reports_an_unknown_domain_as_an_error_fact() -> None:
    facts = host_side.parse_domstate("error: failed to get domain 'r-12-VM'\n")
    assert facts.error.startswith("error: failed to get domain")


def test_it_finds_the_control_tap_among_the_domain_nics() -> None:
    text = (
        "==> bridge_name <==\ncloud0\n==> domiflist <==\n Interface   Type     Source     Model    MAC\n---------\n"
        " vnet0       bridge   cloud0     virtio   0e:00:a9:fe:03:5d\n"
        ' vnet1       bridge   cloudbr0   virtio   02:00:4c:5e:00:10\n==> ports <==\n[{"ifname":"vnet0",'
        '"flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","address":"fe:00:a9:fe:03:5d"}]\n'
    )
    facts = host_side.parse_tap(text)
    assert (facts.control_tap, facts.control_tap_attached, facts.control_tap_up) == ("vnet0", True, True)


def test_it_keeps_only_error_lines_of_the_qemu_log() -> None:
    facts = host_side.parse_qemu_log(
        "|char device redirected to /dev/pts/3\n|qemu: terminating on signal 15 from pid 1\n"
    )
    assert facts.error_lines == ("qemu: terminating on signal 15 from pid 1",)


def test_it_reads_the_private_bridge_the_agent_names() -> None:
    text = (FIXTURES_DIR / "host_tap" / "attached.txt").read_text()
    renamed = text.replace("==> bridge_name <==\ncloud0\n", "==> bridge_name <==\ncloudbr-ctl\n").replace(
        "cloud0", "cloudbr-ctl"
    )
    facts = host_side.parse_tap(renamed)
    assert (facts.bridge, facts.control_tap_attached) == ("cloudbr-ctl", True)


def test_it_falls_back_to_cloud0_when_the_bridge_name_is_not_an_interface_name() -> None:
    text = (FIXTURES_DIR / "host_cloud0" / "healthy.txt").read_text()
    facts = host_side.parse_cloud0(text.replace("==> bridge_name <==\ncloud0\n", "==> bridge_name <==\nbr0;rm -rf\n"))
    assert facts.bridge == "cloud0"


def test_it_reads_private_bridge_name_on_the_host_not_a_fixed_cloud0() -> None:
    command = host_side.cloud0_command("r-12-VM", "169.254.3.93")
    assert "private[.]bridge[.]name" in command and 'ip -j addr show dev "$b"' in command
