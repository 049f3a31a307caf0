"""The files inside a lab router, at their real paths and in the real formats (CLOUDSTACK.md §3).

`router_files(...)` returns a map from the absolute path a router shows (e.g. `/etc/dnsmasq.conf`)
to its content and mode; the builder places each into the router's own mount namespace. The
contents follow what the systemvm scripts write: databags from merge.DataBag.save (sorted,
indented JSON), dnsmasq files from CsDhcp, keepalived from keepalived.conf.templ, haproxy
sections named `<ip_with_underscores>-<port>`, and log history in the formats operators grep.
Scripts and configuration templates are real files under rootfs/, at their paths inside the
router (rootfs/router/...) or the KVM host (rootfs/host/...); what is computed per router
(databags, logs, dhcphosts) is built here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

from devcloud.lab.topology import TEMPLATE_VERSION, LabPlan, Nic, Router

RELEASE_DATE = datetime(2025, 7, 2, 9, 14, 27, tzinfo=UTC)
OUTDATED_VERSION = "4.18.0"
OUTDATED_DATE = datetime(2023, 5, 14, 10, 0, 0, tzinfo=UTC)
DOMAIN = "cs1cloud.internal"
SCRIPTS_SIGNATURE = hashlib.md5(b"cloud-scripts.tgz " + TEMPLATE_VERSION.encode()).hexdigest()  # noqa: S324


@dataclass(frozen=True)
class RouterFile:
    """One file's content and permission bits."""

    content: bytes
    mode: int = 0o644


# The scripts and configuration templates the lab writes into routers and its host, as real
# files laid out at their paths inside the machine (rootfs/router/..., rootfs/host/...).
ROOTFS = Path(__file__).resolve().parent / "rootfs"


def static(relative: str) -> RouterFile:
    """A file of rootfs/ as it is, with its permission bits."""
    path = ROOTFS / relative
    return RouterFile(path.read_bytes(), path.stat().st_mode & 0o777)


def rendered(relative: str, **values: object) -> RouterFile:
    """A template of rootfs/ (`${name}` placeholders, string.Template) filled with `values`."""
    path = ROOTFS / relative
    text = Template(path.read_text()).substitute({name: str(value) for name, value in values.items()})
    return RouterFile(text.encode(), path.stat().st_mode & 0o777)


def bash_date(moment: datetime) -> str:
    """`date` output as bash log_it writes it: `Tue Mar 18 09:43:11 PM UTC 2025`."""
    return moment.strftime("%a %b %d %I:%M:%S %p UTC %Y")


def python_log_time(moment: datetime) -> str:
    """Python logging asctime: `2025-03-06 14:21:10,953`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"


def syslog_time(moment: datetime) -> str:
    """Syslog/dnsmasq timestamp: `Feb 20 10:59:34`."""
    return moment.strftime("%b %d %H:%M:%S")


def release_line(version: str = TEMPLATE_VERSION, built: datetime = RELEASE_DATE) -> str:
    """The line /etc/cloudstack-release holds: `Cloudstack Release 4.20.1 <date>`."""
    return f"Cloudstack Release {version} {built.strftime('%a %b %d %H:%M:%S UTC %Y')}"


def python_log_line(moment: datetime, level: str, message: str) -> str:
    """A cloud.log line in the cs logging format `%(asctime)s %(levelname)-8s %(message)s`."""
    return f"{python_log_time(moment)} {level:<8} {message}"


def config_apply_failure(moment: datetime, cfg_uuid: str) -> str:
    """cloud.log lines of a failed aggregated apply: the traceback, then vr_cfg.sh's failure line."""
    json_uuid = cfg_uuid[::-1]
    lines = [
        f"{bash_date(moment)} : VR config: executing: /opt/cloud/bin/update_config.py ip_associations.json.{json_uuid}",
        python_log_line(
            moment, "INFO", f"update_config.py :: Processing incoming file => ip_associations.json.{json_uuid}"
        ),
        python_log_line(moment, "INFO", f"Processing JSON file ip_associations.json.{json_uuid}"),
        python_log_line(moment, "INFO", "Executing: ip addr add dev eth2 100.64.9.9/16 brd +"),
        python_log_line(
            moment,
            "ERROR",
            "Command 'ip addr add dev eth2 100.64.9.9/16 brd +' returned non-zero exit status 2",
        ),
        "Traceback (most recent call last):",
        '  File "/opt/cloud/bin/update_config.py", line 143, in <module>',
        "    process_file()",
        '  File "/opt/cloud/bin/update_config.py", line 64, in process_file',
        "    finish_config()",
        '  File "/opt/cloud/bin/update_config.py", line 52, in finish_config',
        "    returncode = configure.main(sys.argv)",
        '  File "/opt/cloud/bin/configure.py", line 1398, in main',
        "    config.address().process()",
        '  File "/opt/cloud/bin/cs/CsAddress.py", line 109, in process',
        "    ip.configure(address)",
        '  File "/opt/cloud/bin/cs/CsAddress.py", line 315, in configure',
        "    CsHelper.execute(cmd)",
        '  File "/opt/cloud/bin/cs/CsHelper.py", line 206, in execute',
        "    raise subprocess.CalledProcessError(returncode, command)",
        "subprocess.CalledProcessError: Command 'ip addr add dev eth2 100.64.9.9/16 brd +' returned non-zero "
        "exit status 2.",
        f"{bash_date(moment)} : VR config: executing failed: /opt/cloud/bin/update_config.py "
        f"ip_associations.json.{json_uuid}",
    ]
    return "\n".join(lines) + "\n"


def _json(data: object) -> RouterFile:
    return RouterFile((json.dumps(data, indent=4, sort_keys=True) + "\n").encode())


def _text(lines: list[str], mode: int = 0o644) -> RouterFile:
    return RouterFile(("\n".join(lines) + "\n").encode(), mode)


def _broadcast(nic: Nic) -> str:
    return str(ipaddress.IPv4Interface(f"{nic.ipaddress}/{nic.prefixlen}").network.broadcast_address)


def _cmdline(router: Router, plan: LabPlan) -> dict[str, object]:
    config: dict[str, object] = {
        "type": router.router_type,
        "name": router.name,
        "template": "domP",
        "domain": DOMAIN,
        "dns1": "100.64.0.1",
        "useextdns": "false",
        "exposedns": "false",
        "baremetalnotificationsecuritykey": "",
        "eth0mask": "",
        "redundant_router": "true" if router.redundant else "false",
        "privateMtu": str(router.guest_nics()[0].mtu),
        "publicMtu": str(router.public.mtu),
        "logrotatefrequency": "*:00:00",
        "disable_rp_filter": "true",
        "zone": plan.zone_id,
        "pod": "1",
        "guestgw": router.guest_nics()[0].gateway,
    }
    for nic in router.nics:
        config[f"{nic.device}ip"] = nic.ipaddress
        config[f"{nic.device}mask"] = nic.netmask
    config["gateway"] = router.public.gateway
    if router.hypervisor == "VMware":
        config["mgmtcidr"] = str(plan.management_subnet)
        config["localgw"] = plan.root_bridge_ip
    if router.kind == "vpc":
        config["vpccidr"] = _vpc_cidr(router)
    if router.redundant:
        guest = router.guest_nics()[0]
        config.update(
            {
                "router_id": "51",
                "router_password": hashlib.sha512(guest.networkid.encode()).hexdigest(),
                "advert_int": "1",
                "guestbrd": _broadcast(guest),
                "guestcidrsize": str(guest.prefixlen),
                "redundant_state": "BACKUP",
            }
        )
    return {"id": "cmdline", "config": config}


def _vpc_cidr(router: Router) -> str:
    return str(ipaddress.IPv4Network(router.guest_nics()[0].cidr).supernet(new_prefix=24))


def _ips(router: Router) -> dict[str, object]:
    bag: dict[str, object] = {"id": "ips"}
    for nic in router.nics:
        nw_type = nic.traffictype.lower()
        entry = {
            "add": True,
            "broadcast": _broadcast(nic),
            "cidr": f"{nic.ipaddress}/{nic.prefixlen}",
            "device": nic.device,
            "gateway": nic.gateway if nic.traffictype != "Control" else "None",
            "mac_address": nic.macaddress,
            "netmask": nic.netmask,
            "network": nic.cidr,
            "nic_dev_id": nic.device[3:],
            "nw_type": nw_type,
            "one_to_one_nat": False,
            "public_ip": nic.ipaddress,
            "size": str(nic.prefixlen),
            "source_nat": nic.traffictype == "Public",
            "vif_mac_address": nic.macaddress,
        }
        bag[nic.device] = [entry]
    return bag


def _guestnetwork(router: Router) -> dict[str, object]:
    bag: dict[str, object] = {"id": "guestnetwork"}
    for nic in router.guest_nics():
        bag[nic.device] = {
            "add": True,
            "cidr": nic.cidr,
            "device": nic.device,
            "dns": "100.64.0.1",
            "domain_name": DOMAIN,
            "mac_address": nic.macaddress,
            "router_guest_gateway": nic.gateway,
            "router_guest_ip": nic.ipaddress,
            "router_guest_netmask": nic.netmask,
            "type": "guestnetwork",
        }
    return bag


def _dhcpentry(router: Router) -> dict[str, object]:
    bag: dict[str, object] = {"id": "dhcpentry"}
    for vm in router.vms:
        gateway = str(ipaddress.IPv4Network(_network_of(router, vm.ipaddress).cidr)[1])
        bag[vm.ipaddress] = {
            "default_entry": True,
            "default_gateway": gateway,
            "host_name": vm.name,
            "ipv4_address": vm.ipaddress,
            "ipv6_address": None,
            "mac_address": vm.macaddress,
            "remove": False,
            "type": "dhcpentry",
        }
    return bag


def _network_of(router: Router, ip: str) -> Nic:
    address = ipaddress.IPv4Address(ip)
    for nic in router.guest_nics():
        if address in ipaddress.IPv4Network(nic.cidr):
            return nic
    return router.guest_nics()[0]


def _monitorservice(router: Router) -> dict[str, object]:
    return {
        "id": "monitorservice",
        "config": "[ssh]:processname=sshd:servicename=ssh:pidfile=/var/run/sshd.pid:,"
        "[dhcp]:processname=dnsmasq:servicename=dnsmasq:pidfile=/var/run/dnsmasq/dnsmasq.pid:,"
        + (
            "[loadbalancing]:processname=haproxy:servicename=haproxy:pidfile=/var/run/haproxy.pid:,"
            if router.runs_haproxy
            else ""
        ),
        "excluded_health_checks": [],
        "health_checks_advanced_run_interval": 10,
        "health_checks_basic_run_interval": 3,
        "health_checks_enabled": True,
    }


def health_checks_data(router: Router, release: str) -> dict[str, object]:
    """/root/health_checks_data.json as the management server pushes it (§4.3)."""
    vms = "".join(
        f"vmName={vm.name},macAddress={vm.macaddress},ip={vm.ipaddress},dhcp=true,dns=true;" for vm in router.vms
    )
    gateways = "gatewaysIps=" + "".join(f"{gw} " for gw in sorted({router.public.gateway}))
    forwards = "".join(
        f"sourceIp={router.public.ipaddress},sourcePortStart={port},sourcePortEnd={port},"
        f"destIp={vm},destPortStart={vm_port},destPortEnd={vm_port};"
        for port, vm, vm_port in router.port_forwards
    )
    config = {
        "virtualMachines": vms,
        "gateways": gateways,
        "systemThresholds": "minDiskNeeded=100.0,maxCpuUsage=100.0,maxMemoryUsage=100.0;",
        "routerVersion": f"templateVersion={release},scriptsVersion={SCRIPTS_SIGNATURE}",
    }
    if forwards:
        config["portForwarding"] = forwards
    if router.runs_haproxy:
        pub = router.public.ipaddress
        config["haproxyData"] = (
            "global.maxconn=4096,global.maxpipes=1024,default.timeout.connect=5000,"
            "default.timeout.server=50000,default.timeout.client=50000;"
            f"sourcePortStart=80,sourcePortEnd=80,sourceIp={pub},destPortStart=80,destPortEnd=80,"
            "algorithm=roundrobin,protocol=tcp,stickiness=false,http=false,keepAliveEnabled=false,"
            f"vmIps={' '.join(vm.ipaddress for vm in router.vms)};"
        )
    return {
        "excluded_health_checks": [],
        "health_checks_advanced_run_interval": 10,
        "health_checks_basic_run_interval": 3,
        "health_checks_config": config,
        "health_checks_enabled": True,
    }


def dnsmasq_conf(router: Router) -> RouterFile:
    """/etc/dnsmasq.conf from the template's dnsmasq.conf.tmpl (§3.6)."""
    others = [nic.device for nic in router.nics if nic.traffictype != "Guest"]
    return rendered(
        "router/etc/dnsmasq.conf.tmpl",
        except_interfaces="\n".join(f"except-interface={device}" for device in others),
        no_dhcp_interfaces="\n".join(f"no-dhcp-interface={device}" for device in others),
        domain=DOMAIN,
    )


def cloud_conf(router: Router) -> list[str]:
    """/etc/dnsmasq.d/cloud.conf as CsDhcp writes it."""
    lines: list[str] = []
    listen = ["127.0.0.1"]
    for index, nic in enumerate(router.guest_nics()):
        tag = f"interface-{nic.device}-{index}"
        lines += [
            f"dhcp-range=set:{tag},{nic.gateway},static",
            f"dhcp-option=tag:{tag},15,{DOMAIN}",
            f"dhcp-option=tag:{tag},6,{nic.gateway}",
            f"dhcp-option=tag:{tag},3,{nic.gateway}",
            f"dhcp-option=tag:{tag},1,{nic.netmask}",
        ]
        listen.append(nic.ipaddress)
    lines.append("listen-address=" + ",".join(listen))
    return lines


def keepalived_conf(router: Router, auth_type: str) -> RouterFile:
    """/etc/keepalived/keepalived.conf from keepalived.conf.templ (§3.8)."""
    guest = router.guest_nics()[0]
    return rendered(
        "router/etc/keepalived/keepalived.conf.templ",
        router_name=router.name,
        guest_device=guest.device,
        auth_type=auth_type,
        auth_pass=hashlib.sha512(guest.networkid.encode()).hexdigest()[:8],
        virtual_ipaddress=f"{guest.gateway}/{guest.prefixlen} brd {_broadcast(guest)} dev {guest.device}",
    )


def haproxy_cfg(router: Router) -> RouterFile:
    """/etc/haproxy/haproxy.cfg with one `listen <ip_>-80` section balancing the VMs (§3.7)."""
    pub = router.public.ipaddress
    section = f"{pub.replace('.', '_')}-80"
    return rendered(
        "router/etc/haproxy/haproxy.cfg.tmpl",
        section=section,
        public_ip=pub,
        servers="\n".join(f"\tserver {section}_{n} {vm.ipaddress}:80" for n, vm in enumerate(router.vms)),
    )


def dhcphosts(router: Router) -> RouterFile:
    """/etc/dhcphosts.txt as CsDhcp writes it from the dhcpentry databag: `mac,ip,hostname,infinite`."""
    return _text([f"{vm.macaddress},{vm.ipaddress},{vm.name},infinite" for vm in router.vms])


def password_instances(router: Router) -> list[str]:
    """The cloud-password-server@ instances, one per guest NIC: its address, or `<gateway VIP>,<address>` when redundant."""
    return [f"{nic.gateway},{nic.ipaddress}" if router.redundant else nic.ipaddress for nic in router.guest_nics()]


def apache_vhost(router: Router, nic: Nic) -> RouterFile:
    """/etc/apache2/sites-enabled/vhost-<guest ip>.conf: userdata and metadata on the guest address (port 80).

    A redundant member also listens on the gateway VIP (nonlocal bind lets a BACKUP do so).
    The lab serves no 443: the VR's TLS vhost needs the template's certificate.
    """
    addresses = [nic.ipaddress, nic.gateway] if router.redundant else [nic.ipaddress]
    return _text(
        [
            *[f"Listen {address}:80" for address in addresses],
            f"<VirtualHost {' '.join(f'{address}:80' for address in addresses)}>",
            f"\tServerName {router.router_type}.{DOMAIN}",
            "\tDocumentRoot /var/www/html",
            "\tErrorLog ${APACHE_LOG_DIR}/error.log",
            "\tCustomLog ${APACHE_LOG_DIR}/access.log combined",
            "\t<Directory /var/www/html>",
            "\t\tOptions -Indexes +FollowSymLinks",
            "\t\tAllowOverride All",
            "\t\tRequire all granted",
            "\t</Directory>",
            "</VirtualHost>",
        ]
    )


def apache_files(router: Router) -> dict[str, RouterFile]:
    """apache2 as a VR runs it: one vhost per guest address, no catch-all listener, a small worker pool."""
    files: dict[str, RouterFile] = {
        # The machine's ports.conf and default site listen on every address: the VR's vhosts carry their Listens.
        "/etc/apache2/ports.conf": _text(["# Listen directives live in the vhost-<ip>.conf of each guest address."]),
        "/etc/apache2/sites-enabled/000-default.conf": _text(["# no default site on a router"]),
        "/etc/apache2/mods-available/mpm_event.conf": static("router/etc/apache2/mpm_event.conf"),
        "/var/www/html/userdata/.htaccess": _text(["Options -Indexes"]),
        "/var/www/html/metadata/.htaccess": _text(["Options -Indexes"]),
        "/var/log/apache2/error.log": RouterFile(b""),
        "/var/log/apache2/access.log": RouterFile(b""),
    }
    for nic in router.guest_nics():
        files[f"/etc/apache2/sites-enabled/vhost-{nic.ipaddress}.conf"] = apache_vhost(router, nic)
    for vm in router.vms:
        files[f"/var/www/html/userdata/{vm.ipaddress}/user-data"] = _text(["#cloud-config", f"hostname: {vm.name}"])
        files[f"/var/www/html/metadata/{vm.ipaddress}/local-hostname"] = _text([vm.name])
    return files


def kernel_logs(router: Router, created: datetime) -> dict[str, RouterFile]:
    """kern.log and messages as the template's rsyslog writes them (traditional format, kern.* and info/notice/warn)."""
    boot = created - timedelta(days=2, hours=3)
    kernel = [
        f"{syslog_time(boot)} {router.name} kernel: [    0.000000] Linux version 6.1.0-18-amd64 "
        "(debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1",
        *[
            f"{syslog_time(boot + timedelta(seconds=3))} {router.name} kernel: [    3.{104512 + n:06d}] "
            f"virtio_net virtio{n} {nic.device}: renamed from ens{3 + n}"
            for n, nic in enumerate(router.nics)
        ],
        f"{syslog_time(boot + timedelta(seconds=9))} {router.name} kernel: [    9.221004] nf_conntrack: "
        "default automatic helper assignment has been turned off for security reasons and CT-based firewall rule "
        "not found. Use the iptables CT target to attach helpers instead.",
    ]
    return {"/var/log/kern.log": _text(kernel), "/var/log/messages": _text(kernel)}


def _cloud_log_history(router: Router, created: datetime) -> list[str]:
    boot = created - timedelta(days=2, hours=3)
    moment = boot
    lines = [
        f"{bash_date(moment)} Starting guest services for kvm",
        f"{bash_date(moment + timedelta(seconds=2))} acpiphp and pci_hotplug module already compiled in",
        f"{bash_date(moment + timedelta(seconds=9))} Booting from cloudstack, remove old configuration files in "
        "/etc/cloudstack/",
        f"{bash_date(moment + timedelta(seconds=12))} Setting up {router.router_type} system vm",
    ]
    moment += timedelta(seconds=40)
    cfg = f"VR-{router.id}"
    lines.append(f"{bash_date(moment)} : VR config: executing: /opt/cloud/bin/update_config.py cmd_line.json")
    for bag in ("ip_associations.json", "guest_network.json", "vm_dhcp_entry.json", "monitor_service.json"):
        name = f"{bag}.{hashlib.md5((router.id + bag).encode()).hexdigest()[:8]}-4f1c-9d2e-{router.index:012d}"  # noqa: S324
        lines.append(f"{bash_date(moment)} : VR config: executing: /opt/cloud/bin/update_config.py {name}")
        lines.append(python_log_line(moment, "INFO", f"update_config.py :: Processing incoming file => {name}"))
        lines.append(python_log_line(moment, "INFO", f"Processing JSON file {name}"))
        lines.append(python_log_line(moment, "INFO", f"Command of type {bag.split('.')[0].replace('_', '')} received"))
        moment += timedelta(milliseconds=350)
    for nic in router.nics:
        lines.append(
            python_log_line(
                moment, "INFO", f"Address {nic.ipaddress}/{nic.prefixlen} on device {nic.device} already configured"
            )
        )
        lines.append(
            python_log_line(
                moment,
                "INFO",
                f"Adding route table: {100 + int(nic.device[3:])} Table_{nic.device} to /etc/iproute2/rt_tables if not present",
            )
        )
        if nic.traffictype == "Guest":
            lines.append(python_log_line(moment, "ERROR", "Not able to setup source-nat for a regular router yet"))
            lines.append(
                python_log_line(
                    moment,
                    "INFO",
                    f"Executing2: arping -c 1 -I {nic.device} -A -U -s {nic.ipaddress} {nic.gateway}",
                )
            )
        moment += timedelta(milliseconds=18)
    lines.append(
        python_log_line(moment, "ERROR", "Command 'nft list tables ip6 | grep ip6_acl' returned non-zero exit status 1")
    )
    lines.append(python_log_line(moment, "INFO", "Executing: ip link show eth0 | grep 'state DOWN'"))
    lines.append(
        python_log_line(
            moment, "ERROR", "Command 'ip link show eth0 | grep 'state DOWN'' returned non-zero exit status 1"
        )
    )
    for port, vm, vm_port in router.port_forwards:
        lines.append(
            python_log_line(
                moment,
                "INFO",
                f"Add: rule=-A PREROUTING -s 0.0.0.0/0 -d {router.public.ipaddress}/32 -m tcp -p tcp --dport {port} "
                f"-j DNAT --to-destination {vm}:{vm_port} table=nat",
            )
        )
    lines.append(f"{bash_date(moment)} : VR config: executing: /opt/cloud/bin/vr_cfg.sh -c /var/cache/cloud/{cfg}.cfg")
    lines.append(python_log_line(moment, "INFO", "Executing: conntrackd -F"))
    lines.append(f"{bash_date(moment + timedelta(seconds=1))} Boot up process done")
    return lines


def router_files(
    plan: LabPlan, router: Router, created: datetime, authorized_key: str, host_key_note: str
) -> dict[str, RouterFile]:
    """Every file a router shows at its real path, keyed by that path."""
    release = release_line()
    vms = router.vms
    files: dict[str, RouterFile] = {
        "/etc/cloudstack/cmdline.json": _json(_cmdline(router, plan)),
        "/etc/cloudstack/ips.json": _json(_ips(router)),
        "/etc/cloudstack/guestnetwork.json": _json(_guestnetwork(router)),
        "/etc/cloudstack/dhcpentry.json": _json(_dhcpentry(router)),
        "/etc/cloudstack/monitorservice.json": _json(_monitorservice(router)),
        "/etc/cloudstack/vmdata.json": _json({"id": "vmdata"}),
        "/etc/cloudstack/vmpassword.json": _json({"id": "vmpassword"}),
        "/etc/cloudstack-release": _text([release]),
        "/etc/issue": _text([f"Apache CloudStack SystemVM {TEMPLATE_VERSION}", ""]),
        "/etc/dnsmasq.conf": dnsmasq_conf(router),
        "/etc/dnsmasq.d/cloud.conf": _text(cloud_conf(router)),
        "/etc/dnsmasq-resolv.conf": _text(["nameserver 100.64.0.1"]),
        "/etc/dhcphosts.txt": dhcphosts(router),
        "/etc/dhcpopts.txt": RouterFile(b""),
        "/etc/hosts": _text(
            [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "ff02::1\tip6-allnodes",
                "ff02::2\tip6-allrouters",
                f"127.0.1.1\t{router.name}",
                *[f"{vm.ipaddress}\t{vm.name}" for vm in vms],
                f"{router.guest_nics()[0].ipaddress} {router.name} data-server",
            ]
        ),
        "/etc/monitor.conf": static("router/etc/monitor.conf"),
        "/etc/sysctl.conf": static("router/etc/sysctl.conf"),
        "/etc/ssh/sshd_config": rendered(
            "router/etc/ssh/sshd_config.tmpl", control_ip=router.control.ipaddress, host_key_note=host_key_note
        ),
        "/etc/iptables/rules.v4": RouterFile(b""),
        "/var/lib/misc/dnsmasq.leases": _text([f"0 {vm.macaddress} {vm.ipaddress} {vm.name} *" for vm in vms]),
        "/var/cache/cloud/cloud-scripts-signature": _text([SCRIPTS_SIGNATURE]),
        "/var/cache/cloud/boot_up_done": RouterFile(b""),
        f"/var/cache/cloud/processed/VR-{router.id}.cfg": _text(
            ["#Apache CloudStack Virtual Router Config File", "<version>", "1.0", "</version>"]
        ),
        "/opt/cloud/bin/checkrouter.sh": static("router/opt/cloud/bin/checkrouter.sh"),
        "/usr/local/bin/systemctl": static("router/usr/local/bin/systemctl"),
        "/opt/cloud/bin/configure_router.py": static("router/opt/cloud/bin/configure_router.py"),
        "/root/health_checks_data.json": _json(health_checks_data(router, release)),
        "/root/.ssh/authorized_keys": RouterFile((authorized_key.strip() + "\n").encode(), 0o600),
        # root's shell start-up files as on a system VM template. Without them the lab's /root
        # overlay shows the machine's own (which may run slow version-manager hooks on every command).
        "/root/.bashrc": static("router/root/.bashrc"),
        "/root/.profile": static("router/root/.profile"),
        "/var/log/cloud.log": _text(_cloud_log_history(router, created)),
        "/var/log/routerServiceMonitor.log": _text(
            [
                f"{python_log_time(created - timedelta(days=1))} [ALERT] [sshd] The process detected as running",
                f"{python_log_time(created - timedelta(days=1))} [ALERT] [dnsmasq] The process detected as running",
            ]
        ),
        "/var/log/monitor.log": _text([f"{python_log_time(created - timedelta(days=1))} Monitoring services"]),
        "/var/log/dnsmasq.log": _text(
            [f"{syslog_time(created - timedelta(days=2))} dnsmasq[1014]: started, version 2.90 cachesize 150"]
            + [
                f"{syslog_time(created - timedelta(days=2, minutes=-n))} dnsmasq-dhcp[1014]: "
                f"DHCPACK({_network_of(router, vm.ipaddress).device}) {vm.ipaddress} {vm.macaddress} {vm.name}"
                for n, vm in enumerate(vms)
            ]
        ),
        "/var/log/daemon.log": _text(
            [
                f"{syslog_time(created - timedelta(days=2))} {router.name} systemd[1]: Started cloud-early-config.service.",
                f"{syslog_time(created - timedelta(days=2))} {router.name} systemd[1]: Started cloud-postinit.service.",
            ]
        ),
        "/var/log/haproxy.log": RouterFile(b""),
        "/opt/cloud/bin/passwd_server_ip.py": static("router/opt/cloud/bin/passwd_server_ip.py"),
        **kernel_logs(router, created),
        **apache_files(router),
    }
    if router.runs_haproxy:
        files["/etc/haproxy/haproxy.cfg"] = haproxy_cfg(router)
        files["/etc/cloudstack/loadbalancer.json"] = _json(
            {"id": "loadbalancer", "config": haproxy_cfg(router).content.decode().splitlines()}
        )
    if router.kind == "vpc":
        files["/etc/cloudstack/networkacl.json"] = _json(
            {
                "id": "networkacl",
                **{
                    nic.device: {
                        "device": nic.device,
                        "egress_rules": [],
                        "ingress_rules": [
                            {"allowed": True, "cidr": "0.0.0.0/0", "first_port": 22, "last_port": 22, "type": "tcp"}
                        ],
                        "nic_ip": nic.ipaddress,
                        "nic_netmask": str(nic.prefixlen),
                    }
                    for nic in router.guest_nics()
                },
            }
        )
    else:
        files["/etc/cloudstack/firewallrules.json"] = _json({"id": "firewallrules"})
        files["/etc/cloudstack/forwardingrules.json"] = _json(
            {
                "id": "forwardingrules",
                router.public.ipaddress: [
                    {
                        "internal_ip": vm,
                        "internal_ports": str(vm_port),
                        "protocol": "tcp",
                        "public_ip": router.public.ipaddress,
                        "public_ports": str(port),
                        "type": "forward",
                    }
                    for port, vm, vm_port in router.port_forwards
                ],
            }
        )
    if router.redundant:
        # AH authentication, as the template has it, works with this machine's keepalived 2.2.7.
        files["/etc/keepalived/keepalived.conf"] = keepalived_conf(router, "AH")
        for script in ("heartbeat.sh", "check_heartbeat.sh", "arping_gateways.sh"):
            files[f"/ramdisk/rrouter/{script}"] = static(f"router/ramdisk/rrouter/{script}")
        files["/ramdisk/rrouter/keepalived.log"] = RouterFile(b"")
        files["/ramdisk/rrouter/keepalived.ts"] = _text([str(int(created.timestamp()))])
    return files
