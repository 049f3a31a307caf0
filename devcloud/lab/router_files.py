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

import base64
import hashlib
import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devcloud.lab.iptables_rules import LB_PORT, ingress_ports
from devcloud.lab.topology import TEMPLATE_VERSION, VMS_PER_NETWORK, GuestVm, LabPlan, Nic, Router, stable_uuid

RELEASE_DATE = datetime(2025, 7, 2, 9, 14, 27, tzinfo=UTC)
OUTDATED_VERSION = "4.18.0"
OUTDATED_DATE = datetime(2023, 5, 14, 10, 0, 0, tzinfo=UTC)
DOMAIN = "cs1cloud.internal"
# The zone's dns1, where every lab router forwards (the public side's gateway).
PUBLIC_DNS = "100.64.0.1"
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
    """Syslog/dnsmasq timestamp, the day padded with a space as rsyslog and dnsmasq write it: `Feb  2 10:59:34`."""
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}"


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


def non_default(vm: GuestVm) -> bool:
    """Whether the lab gives this VM its NIC here as a non-default one (the last VM of each network).

    A VM's extra NIC in another network is pushed with `default_entry` false: CsDhcp tags its
    dhcphosts line with `set:<ip_with_underscores>` and writes `<tag>,3`, `<tag>,6` and `<tag>,15`
    to /etc/dhcpopts.txt, so dnsmasq sends that NIC no router, DNS or domain.
    """
    return vm.name.endswith(f"-{VMS_PER_NETWORK - 1}")


def dhcp_tag(vm: GuestVm) -> str:
    """CsDhcp's tag for a non-default NIC: its address with underscores."""
    return vm.ipaddress.replace(".", "_")


def _dhcpentry(router: Router) -> dict[str, object]:
    bag: dict[str, object] = {"id": "dhcpentry"}
    for vm in router.vms:
        gateway = str(ipaddress.IPv4Network(_network_of(router, vm.ipaddress).cidr)[1])
        bag[vm.ipaddress] = {
            "default_entry": not non_default(vm),
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
    """/etc/dnsmasq.conf as the router's setup script leaves it (§3.6).

    Isolated routers: setup_dnsmasq (setup/common.sh) copies dnsmasq.conf.tmpl, sets the domain
    (option 15, `domain=`, `local=`), turns `dhcp-range_ip4` into `dhcp-range=<eth0ip>,static`
    (eth0 is the guest NIC), appends the default router (the guest gateway VIP on a redundant
    router, else eth0's address), the DNS servers (the router itself, then dns1) and
    `dhcp-client-update`. VPC routers: setup_vpcrouter copies vpcdnsmasq.conf and sets `domain=`
    and `local=` only. Both drop `leasefile-ro` because dhcp_release is installed (dnsmasq-utils,
    as on 4.18+ templates). The per-network ranges and options are CsDhcp's, in cloud.conf.
    """
    if router.kind == "vpc":
        return rendered("router/etc/vpcdnsmasq.conf", domain=DOMAIN)
    others = [nic.device for nic in router.nics if nic.traffictype != "Guest"]
    guest = router.guest_nics()[0]
    gateway = guest.gateway if router.redundant else guest.ipaddress
    return rendered(
        "router/etc/dnsmasq.conf.tmpl",
        except_interfaces="\n".join(f"except-interface={device}" for device in others),
        no_dhcp_interfaces="\n".join(f"no-dhcp-interface={device}" for device in others),
        domain=DOMAIN,
        dhcp_range=f"dhcp-range={guest.ipaddress},static",
        appended=f"dhcp-option=option:router,{gateway}\ndhcp-option=6,{gateway},{PUBLIC_DNS}",
    )


def cloud_conf(router: Router) -> list[str]:
    """/etc/dnsmasq.d/cloud.conf as CsDhcp writes it (on a VPC router after setup_vpcrouter's dhcp-hostsfile line)."""
    lines: list[str] = ["dhcp-hostsfile=/etc/dhcphosts.txt"] if router.kind == "vpc" else []
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
    """/etc/dhcphosts.txt as CsDhcp writes it: `mac,ip,hostname,infinite`, tagged for a non-default NIC."""
    return _text(
        [
            f"{vm.macaddress},set:{dhcp_tag(vm)},{vm.ipaddress},{vm.name},infinite"
            if non_default(vm)
            else f"{vm.macaddress},{vm.ipaddress},{vm.name},infinite"
            for vm in router.vms
        ]
    )


def dhcpopts(router: Router) -> RouterFile:
    """/etc/dhcpopts.txt as CsDhcp writes it: options 3, 6 and 15 (sent empty) per non-default NIC's tag."""
    return _text([f"{dhcp_tag(vm)},{option}" for vm in router.vms if non_default(vm) for option in (3, 6, 15)])


def etc_hosts(router: Router) -> RouterFile:
    """/etc/hosts as CsDhcp rewrites it: its preseed (IPv6 lines included), then one line per VM, tab-separated.

    The `<guest ip> <hostname> data-server` line is written for isolated routers only (is_router).
    """
    entries = [
        ("127.0.0.1", "localhost"),
        ("127.0.1.1", router.name),
        ("::1", "localhost ip6-localhost ip6-loopback"),
        ("ff02::1", "ip6-allnodes"),
        ("ff02::2", "ip6-allrouters"),
    ]
    if router.kind != "vpc":
        entries.append((router.guest_nics()[0].ipaddress, f"{router.name} data-server"))
    entries += [(vm.ipaddress, vm.name) for vm in router.vms]
    return _text([f"{ip}\t{names}" for ip, names in entries])


def password_instances(router: Router) -> list[str]:
    """The cloud-password-server@ instances, one per guest NIC: its address, or `<gateway VIP>,<address>` when redundant."""
    return [f"{nic.gateway},{nic.ipaddress}" if router.redundant else nic.ipaddress for nic in router.guest_nics()]


def apache_vhost(router: Router, nic: Nic) -> RouterFile:
    """/etc/apache2/sites-enabled/vhost-<guest ip>.conf as CsApache writes it from the template's vhost.template.

    Userdata and metadata on port 80 and, with mod_ssl, on 443 (the template's snakeoil
    certificate paths); CsApache puts the guest address in the VirtualHost and Listen lines, and a
    redundant member the gateway VIP beside it (nonlocal bind lets a BACKUP listen there too).
    """
    addresses = [nic.ipaddress, nic.gateway] if router.redundant else [nic.ipaddress]
    server_name = f"\tServerName {router.router_type}.{DOMAIN}"

    def host(port: int, log: str, ssl: list[str]) -> list[str]:
        return [
            f"<VirtualHost {' '.join(f'{address}:{port}' for address in addresses)}>",
            "\tServerAdmin webmaster@localhost",
            "\tDocumentRoot /var/www/html",
            server_name,
            "\t<Directory />",
            "\t\tOptions FollowSymLinks",
            "\t\tAllowOverride None",
            "\t</Directory>",
            "\t<Directory /var/www/html>",
            "\t\tOptions Indexes FollowSymLinks MultiViews",
            "\t\tAllowOverride All",
            "\t\tRequire all granted",
            "\t</Directory>",
            "\tErrorLog ${APACHE_LOG_DIR}/error.log",
            "\tLogLevel warn",
            f"\tCustomLog ${{APACHE_LOG_DIR}}/{log} combined",
            *ssl,
            "</VirtualHost>",
        ]

    ssl = [
        "\tSSLEngine on",
        "\tSSLProtocol TLSv1.2",
        "\tSSLCertificateFile    /etc/ssl/certs/ssl-cert-snakeoil.pem",
        "\tSSLCertificateKeyFile /etc/ssl/private/ssl-cert-snakeoil.key",
    ]
    return _text(
        [
            *host(80, "access.log", []),
            "",
            "<IfModule mod_ssl.c>",
            *host(443, "ssl_access.log", ssl),
            "</IfModule>",
            "",
            *[f"Listen {address}:80" for address in addresses],
            "",
            "<IfModule mod_ssl.c>",
            *[f"    Listen {address}:443" for address in addresses],
            "</IfModule>",
        ]
    )


def snakeoil_certificate(router: Router) -> tuple[bytes, bytes]:
    """A self-signed certificate and key for the router's name, as Debian's ssl-cert makes its snakeoil pair."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, router.name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def vm_metadata(router: Router, plan: LabPlan) -> dict[str, list[list[str]]]:
    """Each VM's vm_metadata entries as cs_vmdata keeps them: `[folder, file, content]`, userdata base64."""
    data: dict[str, list[list[str]]] = {}
    for vm in router.vms:
        user_data = base64.b64encode(f"#cloud-config\nhostname: {vm.name}\n".encode()).decode()
        instance = stable_uuid(plan.name, "vm", vm.name)
        data[vm.ipaddress] = [
            ["userdata", "user-data", user_data],
            ["metadata", "service-offering", "Small Instance"],
            ["metadata", "availability-zone", plan.zone_id],
            ["metadata", "local-ipv4", vm.ipaddress],
            ["metadata", "local-hostname", vm.name],
            ["metadata", "public-ipv4", router.public.ipaddress],
            ["metadata", "public-hostname", router.public.ipaddress],
            ["metadata", "instance-id", instance],
            ["metadata", "vm-id", instance],
        ]
    return data


def www_files(metadata: dict[str, list[list[str]]]) -> dict[str, RouterFile]:
    """/var/www/html as CsVmMetadata writes it from the vmdata databag: files, manifests and .htaccess rewrites."""
    files: dict[str, RouterFile] = {"/var/www/html/.htaccess": _text(["Options -Indexes"])}
    rewrites = ["Options +FollowSymLinks", "RewriteEngine On", ""]
    for ip, entries in metadata.items():
        names = []
        for folder, name, content in entries:
            rule = f"RewriteRule ^{name}$  ../{folder}/%{{REMOTE_ADDR}}/{name} [L,NC,QSA]"
            if rule not in rewrites:
                rewrites.append(rule)
            files[f"/var/www/html/{folder}/{ip}/.htaccess"] = _text(
                ["Options -Indexes", "Order Deny,Allow", "Deny from all", f"Allow from {ip}"]
            )
            if folder == "userdata":
                files[f"/var/www/html/{folder}/{ip}/{name}"] = RouterFile(base64.b64decode(content))
                continue
            files[f"/var/www/html/{folder}/{ip}/{name}"] = RouterFile(content.encode())
            names.append(name)
            for rule in (
                "RewriteRule ^meta-data/(.+)$  ../metadata/%{REMOTE_ADDR}/$1 [L,NC,QSA]",
                "RewriteRule ^meta-data/$  ../metadata/%{REMOTE_ADDR}/meta-data [L,NC,QSA]",
            ):
                if rule not in rewrites:
                    rewrites.append(rule)
        files[f"/var/www/html/metadata/{ip}/meta-data"] = _text(names)
    files["/var/www/html/latest/.htaccess"] = _text(rewrites)
    return files


def apache_files(router: Router, plan: LabPlan) -> dict[str, RouterFile]:
    """apache2 as a VR runs it: one vhost per guest address (80 and 443), no catch-all listener, a small worker pool."""
    certificate, key = snakeoil_certificate(router)
    files: dict[str, RouterFile] = {
        # setup_apache2_common comments out ports.conf and removes every other site: the vhosts carry their Listens.
        "/etc/apache2/ports.conf": _text(["# CS: Done by Python CsApp config"]),
        "/etc/apache2/sites-enabled/000-default.conf": _text(["# no default site on a router"]),
        "/etc/apache2/mods-available/mpm_event.conf": static("router/etc/apache2/mpm_event.conf"),
        # a2enmod ssl and rewrite, as the template has them (the /latest/ .htaccess rewrites to a VM's
        # own files), from the load files the machine's apache2 package ships.
        "/etc/apache2/mods-enabled/rewrite.load": _machine_file("/etc/apache2/mods-available/rewrite.load"),
        "/etc/apache2/mods-enabled/ssl.load": _machine_file("/etc/apache2/mods-available/ssl.load"),
        "/etc/apache2/mods-enabled/ssl.conf": _machine_file("/etc/apache2/mods-available/ssl.conf"),
        "/etc/apache2/mods-enabled/socache_shmcb.load": _machine_file("/etc/apache2/mods-available/socache_shmcb.load"),
        "/etc/ssl/certs/ssl-cert-snakeoil.pem": RouterFile(certificate),
        "/etc/ssl/private/ssl-cert-snakeoil.key": RouterFile(key, 0o640),
        "/var/log/apache2/error.log": RouterFile(b""),
        "/var/log/apache2/access.log": RouterFile(b""),
        "/var/log/apache2/ssl_access.log": RouterFile(b""),
    }
    for nic in router.guest_nics():
        files[f"/etc/apache2/sites-enabled/vhost-{nic.ipaddress}.conf"] = apache_vhost(router, nic)
    files.update(www_files(vm_metadata(router, plan)))
    return files


def _machine_file(path: str) -> RouterFile:
    return RouterFile(Path(path).read_bytes())


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


def load_balancer_databag(router: Router) -> dict[str, object]:
    """/etc/cloudstack/loadbalancer.json as cs_loadbalancer keeps it: `config` is the pushed `rules` list.

    One LoadBalancerRule (the agent's model, Gson lower_case_with_underscores): haproxy.cfg as
    `configuration` lines, which CsLoadBalancer writes out, and the `ip:port` lists whose
    `add_rules` become INPUT accepts.
    """
    return {
        "id": "loadbalancer",
        "config": [
            {
                "add_rules": [f"{router.public.ipaddress}:{LB_PORT}"],
                "configuration": haproxy_cfg(router).content.decode().splitlines(),
                "is_transparent": False,
                "network_cidr": router.guest_nics()[0].cidr,
                "remove_rules": [],
                "router_ip": router.guest_nics()[0].ipaddress,
                "ssl_certs": [],
                "stat_rules": [],
                "tmp_cfg_file_name": "haproxy.cfg.new",
                "tmp_cfg_file_path": "/etc/haproxy/",
            }
        ],
    }


def firewall_databag(router: Router) -> dict[str, object]:
    """/etc/cloudstack/firewallrules.json as cs_firewallrules keeps it: rules by id.

    An ingress rule per opened public port (CsAcl writes `-A FIREWALL_<ip> ... -j ACCEPT`) and
    the network's default egress rule (all protocols, allowed: `-A FW_EGRESS_RULES -j ACCEPT`).
    """
    public = router.public.ipaddress
    rules: list[dict[str, object]] = [
        {
            "already_added": False,
            "default_egress_policy": False,
            "dest_cidr_list": [],
            "guest_cidr": router.guest_nics()[0].cidr,
            "id": 100 + number,
            "protocol": "tcp",
            "purpose": "Firewall",
            "revoked": False,
            "source_cidr_list": ["0.0.0.0/0"],
            "src_ip": public,
            "src_port_range": [port, port],
            "traffic_type": "Ingress",
        }
        for number, port in enumerate(ingress_ports(router))
    ]
    rules.append(
        {
            "already_added": False,
            "default_egress_policy": True,
            "dest_cidr_list": [],
            "guest_cidr": router.guest_nics()[0].cidr,
            "id": 99,
            "protocol": "all",
            "purpose": "Firewall",
            "revoked": False,
            "source_cidr_list": [],
            "src_ip": "",
            "traffic_type": "Egress",
        }
    )
    return {"id": "firewallrules", **{str(rule["id"]): rule for rule in rules}}


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
        "/etc/cloudstack/vmdata.json": _json({"id": "vmdata", **vm_metadata(router, plan)}),
        "/etc/cloudstack/vmpassword.json": _json({"id": "vmpassword"}),
        "/etc/cloudstack-release": _text([release]),
        "/etc/issue": _text([f"Apache CloudStack SystemVM {TEMPLATE_VERSION}", ""]),
        "/etc/dnsmasq.conf": dnsmasq_conf(router),
        "/etc/dnsmasq.d/cloud.conf": _text(cloud_conf(router)),
        "/etc/dnsmasq-resolv.conf": _text(["nameserver 100.64.0.1"]),
        "/etc/dhcphosts.txt": dhcphosts(router),
        "/etc/dhcpopts.txt": dhcpopts(router),
        "/etc/hosts": etc_hosts(router),
        "/etc/monitor.conf": static("router/etc/monitor.conf"),
        "/etc/rsyslog.conf": static("router/etc/rsyslog.conf"),
        "/etc/rsyslog.d/49-haproxy.conf": static("router/etc/rsyslog.d/49-haproxy.conf"),
        "/etc/sysctl.conf": static("router/etc/sysctl.conf"),
        "/etc/ssh/sshd_config": rendered(
            "router/etc/ssh/sshd_config.tmpl", control_ip=router.control.ipaddress, host_key_note=host_key_note
        ),
        "/etc/iptables/rules.v4": RouterFile(b""),
        "/var/lib/misc/dnsmasq.leases": _text([f"0 {vm.macaddress} {vm.ipaddress} {vm.name} *" for vm in vms]),
        "/var/cache/cloud/cloud-scripts-signature": _text([SCRIPTS_SIGNATURE]),
        "/var/cache/cloud/boot_up_done": RouterFile(b""),
        # setup_dnsmasq: dhcp_release is installed, so dnsmasq keeps its own leases (no leasefile-ro).
        "/var/cache/cloud/dnsmasq_managed_lease": _text(["1"]),
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
        **apache_files(router, plan),
    }
    if router.runs_haproxy:
        files["/etc/haproxy/haproxy.cfg"] = haproxy_cfg(router)
        files["/etc/cloudstack/loadbalancer.json"] = _json(load_balancer_databag(router))
    if router.kind == "vpc":
        files["/etc/cloudstack/networkacl.json"] = _json(
            {
                "id": "networkacl",
                **{
                    nic.device: {
                        "device": nic.device,
                        "egress_rules": [{"allowed": True, "cidr": "0.0.0.0/0", "type": "all"}],
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
        files["/etc/cloudstack/firewallrules.json"] = _json(firewall_databag(router))
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
