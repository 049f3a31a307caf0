"""`python manage.py lab up|down|status|fault|clear`: the lab of real virtual routers.

`lab up [--name vrc] [--block 0] [--routers N] [--faults r-12-VM:dnsmasq-down,...]` builds a lab
(Linux and root only) and refuses when one of that name is up; `lab down` removes exactly what
that lab made; `lab status [--json]` reports it; `lab fault ROUTER FAULT` and `lab clear ROUTER
FAULT` inject and clear one fault on a running lab.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devcloud import lab
from devcloud.lab.system_commands import LabCommandError
from devcloud.lab.topology import PlanError


class Command(BaseCommand):
    help = "Bring the lab of real virtual routers up or down, show it, inject or clear faults."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        up = actions.add_parser("up", help="build a lab")
        up.add_argument("--routers", type=int, default=None, help="router count (default: one of each kind)")
        up.add_argument("--faults", default="", help="ROUTER:FAULT[,ROUTER:FAULT...] to inject after building")
        down = actions.add_parser("down", help="remove everything a lab made")
        status = actions.add_parser("status", help="show a lab")
        status.add_argument("--json", action="store_true", help="print JSON")
        fault = actions.add_parser("fault", help="inject one fault")
        clear = actions.add_parser("clear", help="clear one fault")
        for sub in (fault, clear):
            sub.add_argument("router")
            sub.add_argument("fault", choices=sorted(lab.FAULTS))
        for sub in (up, down, status, fault, clear):
            sub.add_argument("--name", default="vrc", help="lab name, 1-8 lowercase letters/digits (default vrc)")
        up.add_argument("--block", type=int, default=0, help="use 198.19.BLOCK.0/24 in the root namespace (default 0)")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        try:
            if options["action"] == "up":
                plan = lab.plan_lab(name, options["block"], options["routers"])
                faults = lab.parse_fault_spec(options["faults"], plan)
                state = lab.up(name=name, block=options["block"], router_count=options["routers"])
                lab.inject_faults(faults, lab=name)
                self.stdout.write(
                    f"lab {name} is up in {state.timings.get('up_total', 0):.1f}s; "
                    f"registration: {lab.registration_path(name)}"
                )
            elif options["action"] == "down":
                removed = lab.down(name)
                self.stdout.write(f"lab {name} is down ({len(removed)} objects removed)")
            elif options["action"] == "status":
                self._print_status(lab.status(name), options["json"])
            elif options["action"] == "fault":
                lab.inject_fault(options["router"], options["fault"], lab=name)
                self.stdout.write(f"{options['fault']} injected into {options['router']}")
            else:
                lab.clear_fault(options["router"], options["fault"], lab=name)
                self.stdout.write(f"{options['fault']} cleared on {options['router']}")
        except (lab.LabError, PlanError, LabCommandError) as error:
            raise CommandError(str(error)) from None

    def _print_status(self, report: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
            return
        if not report.get("up") and report.get("status") is None:
            self.stdout.write(f"lab {report['name']} is not up")
            return
        host = report["host"]
        self.stdout.write(
            f"lab {report['name']} ({report['status']}), KVM host {host['ipaddress']} in {host['namespace']}"
        )
        for router in report["routers"]:
            running = ",".join(daemon for daemon, pid in router["pids"].items() if pid) or "-"
            extra = f" {router['redundant_state']}" if router["redundant_state"] else ""
            faults = f" faults={','.join(router['faults'])}" if router["faults"] else ""
            self.stdout.write(
                f"  {router['name']:<10} {router['kind']:<9} {router['hypervisor']:<6} ctl={router['control_ip']:<15} "
                f"pub={router['public_ip']:<12} running={running}{extra}{faults}"
            )
