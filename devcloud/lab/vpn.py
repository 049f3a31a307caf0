"""conntrackd on redundant pairs, a site-to-site IPsec tunnel and a remote-access VPN, as a VR runs them.

conntrackd: CsRedundant writes /etc/conntrackd/conntrackd.conf from the template's
conntrackd.conf.templ (FTFW sync, multicast 225.0.0.50 group 3780 on the guest interface and
its address, the control address and 127.0.0.1 ignored) and runs it on both members of a
pair; this lab writes the same settings and starts it on every redundant router. Two
departures, both forced by this machine: the template's `Stats { LogFile off }` sits inside
`General` and conntrackd 1.4.7 refuses that (a Stats clause cannot be used with Sync at all),
so it is left out; and `Syslog` is off because a lab router has no syslog reader (conntrackd
still writes /var/log/conntrackd.log, as `LogFile on` says).

Site-to-site: the lab's VPC router gets the files CsSite2SiteVpn writes for one VPN
connection (/etc/ipsec.d/ipsec.vpn-<peer>.conf and .secrets, the site2sitevpn databag, the
INPUT/nat/mangle rules of configure_iptables) with the lab's second isolated router as the
customer gateway: a plain strongSwan of its own (/etc/ipsec.conf) answering for its guest
network. Both run charon through the real `ipsec` starter; the tunnel is brought up with
`ipsec up`, as the ping in configure.py would on a real VR.

Remote access: the lab's first router gets CsRemoteAccessVpn's files (l2tp.conf with its
public address, ipsec.any.secrets, xl2tpd.conf with the ip range and local ip,
options.xl2tpd), the remoteaccessvpn databag, the INPUT accepts for udp 500/4500/1701, ah
and esp, then charon and xl2tpd.

charon logs to /var/log/daemon.log in syslog's line format (the time format carries the host
and the `charon:` tag), as rsyslog files it on a VR. Setting up is idempotent: a fault can
call it on any lab before breaking the VPN.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from devcloud.lab.router_files import RouterFile
from devcloud.lab.system_commands import run_inside, write_inside
from devcloud.lab.topology import LabPlan, Router

CONNTRACKD_CONF = "/etc/conntrackd/conntrackd.conf"
CONNTRACKD_MULTICAST = "225.0.0.50"
CONNTRACKD_GROUP = 3780
IPSEC_CONF = "/etc/ipsec.conf"
IPSEC_DIR = "/etc/ipsec.d"
S2S_DATABAG = "/etc/cloudstack/site2sitevpn.json"
RA_DATABAG = "/etc/cloudstack/remoteaccessvpn.json"
XL2TPD_CONF = "/etc/xl2tpd/xl2tpd.conf"
XL2TPD_PID = "/run/xl2tpd.pid"
CHARON_LOGGING = "/etc/strongswan.d/charon-logging.conf"
# This machine's kernel has no ESP (CONFIG_INET_ESP unset, no modules): the site-to-site pair
# keeps its SAs in userspace with the kernel-libipsec plugin (a TUN device), the same IKE and ESP
# (in UDP) on the wire, the same `ipsec statusall`.
LIBIPSEC_CONF = "/etc/strongswan.d/charon/kernel-libipsec.conf"
LIBIPSEC_ON = b"kernel-libipsec {\n    load = yes\n}\n"
# CloudStack's default customer-gateway policies (IKE aes128-sha1;modp1536, ESP aes128-sha1),
# as configure.py turns them into strongSwan proposals.
IKE_POLICY = "aes128-sha1-modp1536"
ESP_POLICY = "aes128-sha1"
RA_IP_RANGE = ("10.1.9.2", "10.1.9.8")
RA_LOCAL_IP = "10.1.9.1"
TUNNEL_TIMEOUT = 20.0
# The template's /etc/ipsec.conf: every connection comes from /etc/ipsec.d.
VR_IPSEC_CONF = b"# ipsec.conf - strongSwan IPsec configuration file\n\nconfig setup\n\ninclude /etc/ipsec.d/*.conf\n"
# The template's /etc/ipsec.secrets: the per-connection secrets files CsSite2SiteVpn and CsRemoteAccessVpn write.
VR_IPSEC_SECRETS = b"include /etc/ipsec.d/ipsec.*.secrets\n"


def conntrackd_conf(router: Router) -> RouterFile:
    """The conntrackd.conf CsRedundant writes: multicast on the guest NIC, local addresses ignored."""
    guest = router.guest_nics()[0]
    ignored = ["127.0.0.1", router.control.ipaddress, *(nic.ipaddress for nic in router.guest_nics())]
    lines = [
        "Sync {",
        "    Mode FTFW {",
        "    }",
        "    Multicast {",
        f"        IPv4_address {CONNTRACKD_MULTICAST}",
        f"        Group {CONNTRACKD_GROUP}",
        f"        IPv4_interface {guest.ipaddress}",
        f"        Interface {guest.device}",
        "        SndSocketBuffer 1249280",
        "        RcvSocketBuffer 1249280",
        "        Checksum on",
        "    }",
        "}",
        "General {",
        "    HashSize 32768",
        "    HashLimit 131072",
        "    LogFile on",
        "    Syslog off",
        "    LockFile /var/lock/conntrackd.lock",
        "    UNIX {",
        "        Path /var/run/conntrackd.sock",
        "    }",
        "    SocketBufferSize 2097152",
        "    SocketBufferSizeMaxGrown 8388608",
        "    NetlinkBufferSize 2097152",
        "    NetlinkBufferSizeMaxGrowth 8388608",
        "    Filter From Userspace {",
        "        Protocol Accept {",
        "            TCP",
        "            SCTP",
        "            DCCP",
        "            UDP",
        "            ICMP",
        "        }",
        "        Address Ignore {",
        *(f"            IPv4_address {address}" for address in ignored),
        "        }",
        "    }",
        "}",
    ]
    return RouterFile(("\n".join(lines) + "\n").encode())


def start_conntrackd(namespace: str, mount_file: Path) -> None:
    """Start conntrackd as the VR's unit does (`conntrackd -C <conf> -d`); its lock lives in /run/lock."""
    run_inside(namespace, mount_file, ["mkdir", "-p", "/run/lock"])
    run_inside(namespace, mount_file, ["/usr/sbin/conntrackd", "-C", CONNTRACKD_CONF, "-d"], timeout=30)


def stop_conntrackd(namespace: str, mount_file: Path) -> None:
    """Ask conntrackd to exit (`-k`) and wait until no conntrackd is left in the router."""
    run_inside(namespace, mount_file, ["/usr/sbin/conntrackd", "-C", CONNTRACKD_CONF, "-k"], check=False)
    deadline = time.monotonic() + 10
    while run_inside(namespace, mount_file, ["pidof", "conntrackd"], check=False).strip():
        if time.monotonic() > deadline:
            run_inside(namespace, mount_file, ["pkill", "-KILL", "-x", "conntrackd"], check=False)
        time.sleep(0.1)


def _lines(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def charon_logging(router: Router) -> bytes:
    """strongswan.d logging: charon into daemon.log, each line as rsyslog would write it."""
    return _lines(
        [
            "charon {",
            "    filelog {",
            "        daemonlog {",
            "            path = /var/log/daemon.log",
            f"            time_format = %b %e %T {router.name} charon:",
            "            append = yes",
            "            flush_line = yes",
            "            default = 1",
            "        }",
            "    }",
            "    syslog {",
            "        daemon {",
            "            default = -1",
            "        }",
            "    }",
            "}",
        ]
    )


def site_to_site_pair(plan: LabPlan) -> tuple[Router, Router]:
    """The VPC router (the VR side) and the customer gateway (the lab's second isolated router)."""
    vpc = next(router for router in plan.routers if router.kind == "vpc")
    isolated = [router for router in plan.routers if router.kind == "isolated"]
    if len(isolated) < 2:
        raise ValueError("the lab needs two isolated routers for a site-to-site peer")
    return vpc, isolated[1]


def remote_access_router(plan: LabPlan) -> Router:
    """The router that serves remote-access VPN: the lab's first isolated router."""
    return next(router for router in plan.routers if router.kind == "isolated")


def lab_psk(plan: LabPlan) -> str:
    """The lab's pre-shared key: lab data, never a real secret, and never read by a probe."""
    return f"lab-{plan.name}-s2s-key"


def site_to_site_files(plan: LabPlan) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The VR side's files (CsSite2SiteVpn's) and the customer gateway's, keyed by path."""
    vr, peer = site_to_site_pair(plan)
    left, right = vr.public.ipaddress, peer.public.ipaddress
    left_cidr = next(vpc.cidr for vpc in plan.vpcs if vpc.id == vr.vpcid)
    right_cidr = peer.guest_nics()[0].cidr
    psk = lab_psk(plan)
    conf = [
        f"#conn for vpn-{right}",
        f"conn vpn-{right}",
        f" left={left}",
        f" leftsubnet={left_cidr}",
        f" right={right}",
        f" rightsubnet={right_cidr}",
        " type=tunnel",
        " authby=secret",
        " keyexchange=ike",
        f" ike={IKE_POLICY}",
        " ikelifetime=24h",
        f" esp={ESP_POLICY}",
        " lifetime=1h",
        " keyingtries=2",
        " auto=route",
        " forceencaps=no",
    ]
    databag = {
        "id": "site2sitevpn",
        right: {
            "local_public_ip": left,
            "local_guest_cidr": left_cidr,
            "peer_gateway_ip": right,
            "peer_guest_cidr_list": right_cidr,
            "ipsec_psk": psk,
            "ike_policy": IKE_POLICY.replace("-modp", ";modp"),
            "esp_policy": ESP_POLICY,
            "ike_lifetime": 86400,
            "esp_lifetime": 3600,
            "dpd": False,
            "passive": False,
            "encap": False,
            "split_connections": False,
            "ike_version": "ike",
        },
    }
    vr_files = {
        IPSEC_CONF: VR_IPSEC_CONF,
        "/etc/ipsec.secrets": VR_IPSEC_SECRETS,
        f"{IPSEC_DIR}/ipsec.vpn-{right}.conf": _lines(conf),
        f"{IPSEC_DIR}/ipsec.vpn-{right}.secrets": _lines([f'{left} {right} : PSK "{psk}"']),
        S2S_DATABAG: (json.dumps(databag, indent=4, sort_keys=True) + "\n").encode(),
        CHARON_LOGGING: charon_logging(vr),
        LIBIPSEC_CONF: LIBIPSEC_ON,
    }
    peer_files = {
        IPSEC_CONF: _lines(
            [
                "config setup",
                "",
                "conn cloudstack-vpc",
                f"    left={right}",
                f"    leftsubnet={right_cidr}",
                f"    right={left}",
                f"    rightsubnet={left_cidr}",
                "    type=tunnel",
                "    authby=secret",
                "    keyexchange=ike",
                f"    ike={IKE_POLICY}!",
                f"    esp={ESP_POLICY}!",
                "    auto=add",
            ]
        ),
        "/etc/ipsec.secrets": _lines([f'{right} {left} : PSK "{psk}"']),
        CHARON_LOGGING: charon_logging(peer),
        LIBIPSEC_CONF: LIBIPSEC_ON,
    }
    return vr_files, peer_files


def site_to_site_rules(local: str, peer: str, device: str) -> list[list[str]]:
    """configure_iptables' INPUT accepts for the peer (iptables argv, inserted at the front)."""
    return [
        [
            "-I",
            "INPUT",
            "-i",
            device,
            "-p",
            "udp",
            "-m",
            "udp",
            "--dport",
            port,
            "-s",
            peer,
            "-d",
            local,
            "-j",
            "ACCEPT",
        ]
        for port in ("500", "4500")
    ] + [["-I", "INPUT", "-i", device, "-p", "esp", "-s", peer, "-d", local, "-j", "ACCEPT"]]


def remote_access_files(router: Router, psk: str) -> dict[str, bytes]:
    """CsRemoteAccessVpn's files and the remoteaccessvpn databag for the router's public address."""
    public = router.public.ipaddress
    databag = {
        "id": "remoteaccessvpn",
        public: {
            "create": True,
            "ip_range": f"{RA_IP_RANGE[0]}-{RA_IP_RANGE[1]}",
            "local_cidr": router.guest_nics()[0].cidr,
            "local_ip": RA_LOCAL_IP,
            "preshared_key": psk,
            "public_interface": router.public.device,
            "vpn_server_ip": public,
        },
    }
    return {
        IPSEC_CONF: VR_IPSEC_CONF,
        "/etc/ipsec.secrets": VR_IPSEC_SECRETS,
        f"{IPSEC_DIR}/l2tp.conf": _lines(
            [
                "conn L2TP-PSK",
                "        authby=secret",
                "        rekey=no",
                "        keyingtries=3",
                "        leftfirewall=yes",
                "        type=transport",
                f"        left={public}",
                "        leftprotoport=udp/l2tp",
                "        right=%any",
                "        rightprotoport=udp/%any",
                "        rightsubnetwithin=0.0.0.0/0",
                "        auto=route",
            ]
        ),
        f"{IPSEC_DIR}/ipsec.any.secrets": _lines([f'{public} : PSK "{psk}"']),
        XL2TPD_CONF: _lines(
            [
                "[lns default]",
                f"ip range = {RA_IP_RANGE[0]}-{RA_IP_RANGE[1]}",
                f"local ip = {RA_LOCAL_IP}",
                "require chap = yes",
                "refuse pap = yes",
                "pppoptfile =    /etc/ppp/options.xl2tpd",
            ]
        ),
        "/etc/ppp/options.xl2tpd": _lines(
            [
                "proxyarp",
                "ipcp-accept-local",
                "ipcp-accept-remote",
                "noccp",
                "idle 1800",
                "auth",
                "mtu 1410",
                "mru 1410",
                "nodefaultroute",
                "debug",
                "connect-delay 5000",
                f"ms-dns {RA_LOCAL_IP}",
            ]
        ),
        RA_DATABAG: (json.dumps(databag, indent=4, sort_keys=True) + "\n").encode(),
        # No kernel-libipsec here: L2TP-PSK only traps udp/1701 until a client connects, which the
        # kernel's XFRM policies do; libipsec would route everything (its trap is 0.0.0.0/0) into its TUN.
        CHARON_LOGGING: charon_logging(router),
    }


def ingress_rules(router: Router, ports: tuple[str, ...], source: str = "0.0.0.0/0") -> list[list[str]]:
    """Ingress firewall rules (mangle FIREWALL_<public ip>) letting IKE/L2TP in, as the tenant's or CloudStack's own.

    An isolated router's ingress firewall ends in DROP; CloudStack opens udp 500/4500/1701
    when remote-access VPN is enabled, and a customer gateway that is itself a router needs
    the same for its peer.
    """
    chain = f"FIREWALL_{router.public.ipaddress}"
    return [
        ["-t", "mangle", "-I", chain, "-s", source, "-p", "udp", "-m", "udp", "--dport", port, "-j", "ACCEPT"]
        for port in ports
    ]


def remote_access_rules(router: Router) -> list[list[str]]:
    """remoteaccessvpn_iptables' INPUT accepts on the public NIC (the mangle VPN_ chain has ah/esp already)."""
    public, device = router.public.ipaddress, router.public.device
    return (
        [
            ["-A", "INPUT", "-i", device, "-d", public, "-p", "udp", "-m", "udp", "--dport", port, "-j", "ACCEPT"]
            for port in ("500", "4500", "1701")
        ]
        + [["-A", "INPUT", "-i", device, "-p", protocol, "-j", "ACCEPT"] for protocol in ("ah", "esp")]
        + ingress_rules(router, ("500", "4500", "1701"))
    )


class VpnRouter:
    """A lab router to write VPN files into and run ipsec/xl2tpd in (its namespace and mount file)."""

    def __init__(self, namespace: str, mount_file: Path) -> None:
        self.namespace = namespace
        self.mount_file = mount_file

    def run(self, argv: list[str], check: bool = True, timeout: float = 30) -> str:
        """A command inside the router."""
        return run_inside(self.namespace, self.mount_file, argv, check=check, timeout=timeout)

    def write(self, files: dict[str, bytes]) -> None:
        """Write files at their real paths (secrets 0400, as configure.py leaves them)."""
        for path, content in files.items():
            self.run(["mkdir", "-p", str(Path(path).parent)])
            write_inside(self.namespace, self.mount_file, path, content)
            if path.endswith(".secrets") or path == "/etc/ipsec.secrets":
                self.run(["chmod", "0400", path])

    def add_rules(self, rules: list[list[str]]) -> None:
        """Add iptables rules that are not there yet (`-C` first, so setting up twice adds nothing)."""
        for rule in rules:
            check = ["-C" if word in ("-I", "-A") else word for word in rule]
            if self.run(["sh", "-c", 'iptables "$@" >/dev/null 2>&1 && echo present', "iptables", *check], check=False):
                continue
            self.run(["iptables", *rule])

    def charon_running(self) -> bool:
        """charon is alive in the router (pidof sees only the router's own PID namespace)."""
        return bool(self.run(["pidof", "charon"], check=False).strip())

    def start_ipsec(self) -> None:
        """`ipsec start` (the starter, then charon), waiting until charon answers on its socket."""
        self.run(["mkdir", "-p", "/run/lock", "/var/run"])
        if not self.charon_running():
            self.run(["ipsec", "start"], check=False)
        deadline = time.monotonic() + 15
        while "Security Associations" not in self.run(["ipsec", "statusall"], check=False, timeout=15):
            if time.monotonic() > deadline:
                raise RuntimeError(f"charon did not answer in {self.namespace}")
            time.sleep(0.3)

    def stop_ipsec(self) -> None:
        """`ipsec stop`: the starter stops charon."""
        self.run(["ipsec", "stop"], check=False)

    def xl2tpd_pid(self) -> str:
        """xl2tpd's pid inside the router, "" when it is not running."""
        return self.run(["pidof", "xl2tpd"], check=False).strip()

    def start_xl2tpd(self) -> None:
        """xl2tpd as its Debian unit starts it (it daemonizes; the control pipe lives in /run/xl2tpd)."""
        self.run(["mkdir", "-p", "/run/xl2tpd"])
        if not self.xl2tpd_pid():
            self.run(["/usr/sbin/xl2tpd", "-c", XL2TPD_CONF, "-p", XL2TPD_PID])
        deadline = time.monotonic() + 10
        while not self.xl2tpd_pid():
            if time.monotonic() > deadline:
                raise RuntimeError(f"xl2tpd did not start in {self.namespace}")
            time.sleep(0.1)

    def stop_xl2tpd(self) -> None:
        """Stop xl2tpd and wait until it is gone."""
        self.run(["pkill", "-TERM", "-x", "xl2tpd"], check=False)
        deadline = time.monotonic() + 10
        while self.xl2tpd_pid():
            if time.monotonic() > deadline:
                self.run(["pkill", "-KILL", "-x", "xl2tpd"], check=False)
            time.sleep(0.1)

    def tunnel_up(self, connection: str) -> bool:
        """The connection has an ESTABLISHED IKE SA and an INSTALLED child SA (checks2svpn's test)."""
        status = self.run(["ipsec", "status", connection], check=False, timeout=15)
        return "ESTABLISHED" in status and "INSTALLED" in status

    def bring_up(self, connection: str, timeout: float = TUNNEL_TIMEOUT) -> None:
        """`ipsec up <connection>` until the tunnel is up (the first try can race the peer's start)."""
        deadline = time.monotonic() + timeout
        while not self.tunnel_up(connection):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{connection} did not come up in {self.namespace}")
            self.run(["ipsec", "up", connection], check=False, timeout=timeout)
