"""Capture probe fixtures from real lab routers, through the real collection code.

Run as root from the repository: `.venv/bin/python -m devcloud.capture.lab_routers`.
It brings up a lab (name `vrcp`, block 198.19.42.0/24, below the test suite's blocks 61-252)
with faults on one router (and one on a redundant member), syncs it
from the simulator into a scratch database, collects a healthy, a faulty and a redundant
router with `run_collection`, and writes the stdout each probe returned over SSH as
tests/fixtures/<probe>/lab_<case>.txt with the parser's facts beside it as .json. The lab,
the simulator and the database are removed at the end. Probes whose output changes with
every run (processes: pids and ages; logs and logfiles: timestamps and sizes; cpu, softirq,
softnet, system: counters) or carries whole configuration files (config) are not captured.
The .json files must be read before committing.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

# The golden fixtures live with the tests (tests/fixtures/<probe>/), not beside this module.
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
LAB_NAME = "vrcp"
LAB_BLOCK = 42
FAULTY, HEALTHY, REDUNDANT = "r-10-VM", "r-11-VM", "r-13-VM"
FAULTS = ("snat-missing", "mtu-mismatch", "outdated-template", "stale-lease", "qemu-tap-failure", "var-log-full")
# A fault of the redundant member, whose own captures (vrrp) it does not touch.
REDUNDANT_FAULTS = ("dhcpopts-tag-missing",)
# (router, probe) -> case name of the fixture written from that router's output.
CAPTURES: dict[tuple[str, str], str] = {
    (HEALTHY, "interfaces"): "lab_isolated",
    (HEALTHY, "routes"): "lab_isolated",
    (HEALTHY, "iptables_filter"): "lab_isolated",
    (HEALTHY, "iptables_nat"): "lab_isolated",
    (HEALTHY, "iptables_mangle"): "lab_isolated",
    (HEALTHY, "conntrack"): "lab_isolated",
    (HEALTHY, "disk"): "lab_isolated",
    (HEALTHY, "vrrp"): "lab_isolated_not_redundant",
    (HEALTHY, "dnsmasq"): "lab_isolated",
    (HEALTHY, "versions"): "lab_isolated",
    (HEALTHY, "host_cloud0"): "lab_kvm_host",
    (HEALTHY, "host_qemu_log"): "lab_running",
    (REDUNDANT, "vrrp"): "lab_redundant_member",
    (FAULTY, "iptables_nat"): "lab_snat_missing",
    (FAULTY, "interfaces"): "lab_mtu_mismatch",
    (FAULTY, "versions"): "lab_outdated_template",
    (FAULTY, "dnsmasq"): "lab_stale_lease",
    (FAULTY, "host_qemu_log"): "lab_tap_failure",
    (FAULTY, "disk"): "lab_var_log_full",
    (REDUNDANT, "dnsmasq"): "lab_dhcpopts_tag_missing",
}


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("the lab needs root")
    from urllib.parse import urlparse, urlunparse

    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vrconsole")
    database = f"vrc_capture_{os.getpid()}"
    admin = urlunparse(urlparse(base)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
            "DATABASE_URL": urlunparse(urlparse(base)._replace(path=f"/{database}")),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "SSH_KNOWN_HOSTS_FILE": "/nonexistent/known_hosts",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    from devcloud import lab

    try:
        call_command("migrate", "--noinput", verbosity=0)
        if lab.status(LAB_NAME).get("status") is not None:
            lab.down(LAB_NAME)
        lab.up(name=LAB_NAME, block=LAB_BLOCK)
        lab.inject_faults({FAULTY: list(FAULTS), REDUNDANT: list(REDUNDANT_FAULTS)}, lab=LAB_NAME)
        try:
            capture()
        finally:
            lab.down(LAB_NAME)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def capture() -> None:
    from diagnostics.models import ProbeResult
    from diagnostics.probes import PROBES_BY_NAME
    from tests.diagnostics.lab_inventory import collect, sync_lab_inventory
    from vrconsole.models import Router

    region = sync_lab_inventory(LAB_NAME, f"lab-{LAB_NAME}")
    for router_name in sorted({router for router, _ in CAPTURES}):
        collection = collect(Router.objects.select_related("host", "zone").get(region=region, name=router_name))
        results = {r.name: r for r in ProbeResult.objects.filter(collection=collection)}
        for (wanted_router, probe), case in CAPTURES.items():
            if wanted_router != router_name:
                continue
            result = results[probe]
            if not result.ok or result.truncated:
                raise SystemExit(f"{probe} on {router_name} did not answer cleanly: {result.error}")
            directory = FIXTURES / probe
            (directory / f"{case}.txt").write_text(result.stdout)
            facts = PROBES_BY_NAME[probe].parse(result.stdout).to_dict()
            (directory / f"{case}.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
            print(f"wrote {probe}/{case}", file=sys.stderr)


if __name__ == "__main__":
    main()
