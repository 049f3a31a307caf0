#!/usr/bin/python3
# Lab version of configure_router.py: what CsRedundant does on a keepalived transition.
import datetime
import glob
import json
import os
import signal
import subprocess
import sys

PUBLIC = {"router": "eth2", "vpcrouter": "eth1"}


def log(message):
    now = datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"
    with open("/var/log/cloud.log", "a") as handle:
        handle.write(f"{stamp} {'INFO':<8} {message}\n")


def dnsmasq_pid():
    try:
        with open("/run/dnsmasq/dnsmasq.pid") as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def password_units():
    """cloud-password-server@<gateway VIP>,<guest ip> per guest NIC, as CsRedundant names them."""
    with open("/etc/cloudstack/guestnetwork.json") as handle:
        bag = json.load(handle)
    return [
        f"cloud-password-server@{nic['router_guest_gateway']},{nic['router_guest_ip']}"
        for key, nic in sorted(bag.items())
        if key != "id" and isinstance(nic, dict)
    ]


CONNTRACKD = ["/usr/sbin/conntrackd", "-C", "/etc/conntrackd/conntrackd.conf"]


def run_quietly(argv):
    log(f"Executing: {' '.join(argv)}")
    subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def vpn_configured():
    """A VPN this router serves: a site-to-site connection file or remote access enabled in its databag."""
    if glob.glob("/etc/ipsec.d/ipsec.vpn-*.conf"):
        return True
    try:
        with open("/etc/cloudstack/remoteaccessvpn.json") as handle:
            bag = json.load(handle)
    except (OSError, ValueError):
        return False
    return any(isinstance(item, dict) and item.get("create") for item in bag.values())


def set_state(state):
    path = "/etc/cloudstack/cmdline.json"
    with open(path) as handle:
        bag = json.load(handle)
    bag["config"]["redundant_state"] = state
    with open(path, "w") as handle:
        json.dump(bag, handle, indent=4, sort_keys=True)


def main():
    with open("/etc/cloudstack/cmdline.json") as handle:
        router_type = json.load(handle)["config"]["type"]
    public = PUBLIC[router_type]
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "--primary":
        log(f"Executing: ip link set {public} up")
        subprocess.call(["ip", "link", "set", public, "up"])
        if dnsmasq_pid() is None:
            log("Executing: systemctl start dnsmasq")
            subprocess.call(["dnsmasq"])
        # The new PRIMARY commits the states its peer sent, flushes and resyncs (CsRedundant.set_primary).
        for flag in ("-c", "-f", "-R", "-B"):
            run_quietly([*CONNTRACKD, flag])
        # CsRedundant restarts ipsec and xl2tpd on every PRIMARY; the lab only where a VPN is configured.
        if vpn_configured():
            run_quietly(["ipsec", "restart"])
            run_quietly(["/usr/sbin/xl2tpd", "-c", "/etc/xl2tpd/xl2tpd.conf", "-p", "/run/xl2tpd.pid"])
        for unit in password_units():
            log(f"Executing: systemctl start {unit}")
            subprocess.call(["/usr/local/bin/systemctl", "start", unit])
        set_state("PRIMARY")
        log("Router switched to primary mode")
    elif mode in ("--backup", "--fault"):
        log(f"Executing: ip link set {public} down")
        subprocess.call(["ip", "link", "set", public, "down"])
        # set_backup runs `conntrackd -d`, set_fault `conntrackd -s`; both stop ipsec and xl2tpd.
        run_quietly([*CONNTRACKD, "-d" if mode == "--backup" else "-s"])
        run_quietly(["ipsec", "stop"])
        run_quietly(["pkill", "-x", "xl2tpd"])
        pid = dnsmasq_pid()
        if pid is not None:
            log("Executing: systemctl stop dnsmasq")
            os.kill(pid, signal.SIGTERM)
        for unit in password_units():
            log(f"Executing: systemctl stop {unit}")
            subprocess.call(["/usr/local/bin/systemctl", "stop", unit])
        state = "BACKUP" if mode == "--backup" else "FAULT"
        set_state(state)
        log(f"Router switched to {state.lower()} mode")


main()
