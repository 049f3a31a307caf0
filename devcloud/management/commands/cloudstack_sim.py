"""`python manage.py cloudstack_sim --port P --routers N`: serve the CloudStack API simulator.

Runs in the foreground until SIGTERM or SIGINT. On start it prints the endpoint and the demo
root-admin key pair as a `cs` ini section, so `cs` and the console can be pointed at it. The
`/sim/control` endpoint is enabled only with `--control-token` (or the generated one it prints).
"""

from __future__ import annotations

import secrets
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devcloud.simulator.server import DEMO_API_KEY, DEMO_SECRET_KEY, base_url_of, build_server
from devcloud.simulator.synthetic import version_tuple


class Command(BaseCommand):
    help = "Serve a simulated CloudStack management-server API (signed requests, real envelopes)."

    def add_arguments(self, parser: CommandParser) -> None:
        # Django's own --version would shadow ours: the simulated CloudStack version matters more here.
        # argparse keeps the conflict policy on the options group too, hence both.
        parser.conflict_handler = "resolve"
        parser._optionals.conflict_handler = "resolve"
        parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080, like a management server)")
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--routers", type=int, default=200, help="synthetic routers (default 200, at most 50000)")
        parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic fleet")
        parser.add_argument("--lab-file", help="JSON file of lab objects in API shapes; re-read when it changes")
        parser.add_argument(
            "--version", "--cloudstack-version", dest="cs_version", default="4.20.1.0", help="simulated version"
        )
        parser.add_argument("--control-token", help="token for /sim/control (default: generated and printed)")
        parser.add_argument("--job-delay", type=float, default=2.0, help="seconds an async router job takes")
        parser.add_argument(
            "--fixed-healthchecksfailed",
            action="store_true",
            help="report healthchecksfailed truthfully (default: reproduce apache/cloudstack#12630, always false)",
        )
        parser.add_argument("--access-log", action="store_true", help="log every request to stderr")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 <= options["routers"] <= 50000:
            raise CommandError("--routers must be between 0 and 50000")
        if len(version_tuple(options["cs_version"])) < 3:
            raise CommandError("--version must look like 4.20.1.0")
        token = options["control_token"] or secrets.token_urlsafe(24)
        try:
            server = build_server(
                options["routers"],
                options["seed"],
                bind=options["bind"],
                port=options["port"],
                version=options["cs_version"],
                lab_file=options["lab_file"],
                control_token=token,
                job_delay=options["job_delay"],
                reproduce_healthchecksfailed_bug=not options["fixed_healthchecksfailed"],
                quiet=not options["access_log"],
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot start the simulator: {exc}") from exc
        base_url = base_url_of(server)
        endpoint = f"{base_url}/client/api"
        self.stdout.write(f"CloudStack {options['cs_version']} simulator at {endpoint}")
        self.stdout.write(f"  {len(server.cloud.fleet.routers)} routers; control: {base_url}/sim/control")
        if not options["control_token"]:
            self.stdout.write(f"  control token: {token}")
        self.stdout.write("\n[simulator]")
        self.stdout.write(f"endpoint = {endpoint}")
        self.stdout.write(f"key = {DEMO_API_KEY}")
        self.stdout.write(f"secret = {DEMO_SECRET_KEY}\n")
        self.stdout.flush()

        def stop(signum: int, frame: FrameType | None) -> None:
            # shutdown() waits for serve_forever, which runs in this thread: hand it to another.
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            server.serve_forever()
        finally:
            server.server_close()
        self.stdout.write("simulator stopped")
