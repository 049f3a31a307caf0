"""DHCP data faults of lab routers: /etc/dhcpopts.txt losing a non-default NIC's tag.

CsDhcp writes `<tag>,3`, `<tag>,6` and `<tag>,15` for every VM NIC that is not the VM's default
one (its dhcphosts line says `set:<tag>`), so dnsmasq sends that NIC no gateway, DNS or domain.
Losing those lines hands the NIC a second default route and the router's DNS. The fault removes
them for real and makes dnsmasq re-read the file (SIGHUP), as a hand edit or a half-applied push
would; clearing writes the file back as CsDhcp does.
"""

from __future__ import annotations

from devcloud.lab.fault_target import FaultSpec
from devcloud.lab.fault_target import FaultTarget as Target
from devcloud.lab.router_files import dhcp_tag, dhcpopts, non_default
from devcloud.lab.system_commands import write_inside

DHCPOPTS = "/etc/dhcpopts.txt"


def _reread(target: Target) -> None:
    # dnsmasq re-reads dhcp-optsfile on SIGHUP; a BACKUP member runs no dnsmasq, which is fine.
    target.run(["pkill", "-HUP", "-x", "dnsmasq"], check=False)


def drop_dhcpopts_tag(target: Target) -> None:
    """Remove the option lines of the router's non-default NIC tags from /etc/dhcpopts.txt."""
    tags = {dhcp_tag(vm) for vm in target.router.vms if non_default(vm)}
    kept = [line for line in dhcpopts(target.router).content.decode().splitlines() if line.split(",")[0] not in tags]
    write_inside(target.namespace, target.mount_file, DHCPOPTS, "".join(f"{line}\n" for line in kept).encode())
    _reread(target)


def rewrite_dhcpopts(target: Target) -> None:
    """Write /etc/dhcpopts.txt back as CsDhcp does."""
    write_inside(target.namespace, target.mount_file, DHCPOPTS, dhcpopts(target.router).content)
    _reread(target)


# name -> (inject, clear, what), merged into faults.FAULTS.
DHCP_FAULTS: dict[str, FaultSpec] = {
    "dhcpopts-tag-missing": (
        drop_dhcpopts_tag,
        rewrite_dhcpopts,
        "a non-default NIC's tag lost from /etc/dhcpopts.txt: dnsmasq sends it a gateway and DNS",
    ),
}
