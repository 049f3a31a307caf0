"""`python manage.py run_local`: the whole console on one machine, on embedded defaults.

Starts, as child processes, everything a deployment runs separately: a Redis of its own
(when REDIS_URL is unset), the CloudStack API simulator holding the lab and a synthetic
fleet, the lab of real routers (when run as root on Linux), RQ workers per queue, the tail
worker, the RQ cron scheduler and daphne. It migrates the SQLite database, creates the demo
login, runs a first sync so the fleet page is full when the URL is printed, and stops everything (lab
included) on Ctrl-C. The demo login exists only here: a deployment creates its users with
`create_admin`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from argparse import RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devcloud import lab
from devcloud.simulator.server import DEMO_API_KEY, DEMO_SECRET_KEY

LAB_NAME = "vrc"
DEMO_USER = "demo"
DEMO_PASSWORD = "vrconsole-demo"  # noqa: S105 - the local demo's published login, never a deployment's


def lab_help() -> str:
    """The lab's routers and the faults --lab-faults accepts, for --help."""
    plan = lab.plan_lab(LAB_NAME, 0)
    lines = ["lab routers (run as root on Linux; the simulator adds synthetic ones):"]
    for router in plan.routers:
        pair = f", pair of {router.pair_name}" if router.pair_name else ""
        lines.append(f"  {router.name:<9} {router.kind:<9} {router.hypervisor}{pair}")
    lines += ["", "faults for --lab-faults ROUTER:FAULT[,ROUTER:FAULT...]:"]
    lines += [f"  {name:<21} {fault.what}" for name, fault in sorted(lab.FAULTS.items())]
    lines += ["", "example: scripts/run --lab-faults r-11-VM:dnsmasq-down,r-14-VM:var-log-full"]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Run the console locally with the lab and the simulated CloudStack (demo defaults)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("VRCONSOLE_PORT", "8000")))
        parser.add_argument("--bind", default=os.environ.get("VRCONSOLE_BIND", "127.0.0.1"))
        parser.add_argument("--sim-port", type=int, default=int(os.environ.get("VRCONSOLE_SIM_PORT", "8081")))
        parser.add_argument(
            "--routers",
            type=int,
            default=int(os.environ.get("VRCONSOLE_SIM_ROUTERS", "300")),
            help="synthetic routers in the simulator besides the lab",
        )
        parser.add_argument("--no-lab", action="store_true", help="do not bring up the lab of real routers")
        parser.add_argument(
            "--lab-faults",
            default=os.environ.get("VRCONSOLE_LAB_FAULTS", ""),
            metavar="ROUTER:FAULT[,...]",
            help="faults to inject into lab routers once the lab is up, e.g. r-11-VM:dnsmasq-down",
        )
        parser.formatter_class = RawDescriptionHelpFormatter
        parser.epilog = lab_help()

    def handle(self, *args: Any, **options: Any) -> None:
        if options["lab_faults"] and not options["no_lab"]:
            try:
                lab.parse_fault_spec(options["lab_faults"], lab.plan_lab(LAB_NAME, 0))
            except lab.LabError as error:
                raise CommandError(str(error)) from None
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.lab_up = False
        var = Path(settings.VAR_DIR)
        (var / "log").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Served on plain HTTP on this machine (scripts/run sets it too): no HTTPS redirect.
        env.setdefault("PLAIN_HTTP", "true")
        # The simulator's synthetic routers carry addresses of documentation ranges that
        # may be this machine's own network: only the lab (198.19.0.0/16) is ever contacted.
        env.setdefault("SSH_ALLOWED_NETWORKS", "198.19.0.0/16")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            self._run(options, env, var)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            self._stop_all(env)

    # -- steps ------------------------------------------------------------------------

    def _run(self, options: dict[str, Any], env: dict[str, str], var: Path) -> None:
        if not os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = self._start_redis(var)
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]

        self._check(manage + ["migrate", "--noinput", "-v", "0"], env, "migrate the database")
        self._check(manage + ["shell", "-v", "0", "-c", _DEMO_USER_SCRIPT], env, "create the demo login")

        lab_file = ""
        if not options["no_lab"]:
            if sys.platform.startswith("linux") and os.geteuid() == 0:
                cmd = manage + ["lab", "up", "--name", LAB_NAME]
                if options["lab_faults"]:
                    cmd += ["--faults", options["lab_faults"]]
                self.stdout.write("bringing up the lab of real routers…")
                self._check(cmd, env, "bring up the lab")
                self.lab_up = True
                lab_file = str(lab.registration_path(LAB_NAME))
            else:
                self.stderr.write("not root on Linux: running without the lab (synthetic routers only)")

        control_token = os.urandom(16).hex()
        sim = manage + [
            "cloudstack_sim",
            "--port",
            str(options["sim_port"]),
            "--routers",
            str(options["routers"]),
            "--control-token",
            control_token,
        ]
        if lab_file:
            sim += ["--lab-file", lab_file]
        self._spawn("simulator", sim, env, var)
        env["CLOUDSTACK_URL"] = f"http://127.0.0.1:{options['sim_port']}/client/api"
        env["CLOUDSTACK_API_KEY"] = DEMO_API_KEY
        env["CLOUDSTACK_SECRET_KEY"] = DEMO_SECRET_KEY
        env["CLOUDSTACK_REGION"] = env.get("CLOUDSTACK_REGION", "lab")
        env.pop("CLOUDSTACK_CONFIG", None)
        self._wait_for_port(options["sim_port"], "the CloudStack simulator")

        self._check(manage + ["sync_routers"], env, "run the first sync")

        self._spawn("worker-sync", manage + ["rqworker", "sync", "default", "--with-scheduler"], env, var)
        self._spawn("worker-actions", manage + ["rqworker", "actions"], env, var)
        self._spawn("worker-collect", manage + ["rqworker", "collect"], env, var)
        self._spawn("worker-collect-now", manage + ["rqworker", "collect_now"], env, var)
        self._spawn("worker-notify", manage + ["rqworker", "notify", "--with-scheduler"], env, var)
        self._spawn("tail-worker", manage + ["tail_worker"], env, var)
        self._spawn("scheduler", manage + ["rqcron", "vrconsole.schedules"], env, var)
        daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
        self._spawn(
            "web", [daphne, "-b", options["bind"], "-p", str(options["port"]), "vrconsole.asgi:application"], env, var
        )
        self._wait_for_port(options["port"], "the web server", host=options["bind"])

        self.stdout.write(self.style.SUCCESS(f"\nVR Console is running: http://{options['bind']}:{options['port']}/"))
        self.stdout.write(f"  demo login: {DEMO_USER} / {DEMO_PASSWORD}  (operator)")
        self.stdout.write(f"  CloudStack simulator: {env['CLOUDSTACK_URL']}")
        self.stdout.write(
            f"  logs: {var / 'log'}/  — Ctrl-C stops everything" + (" and takes the lab down" if self.lab_up else "")
        )
        while True:
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise CommandError(
                        f"{name} exited with status {proc.returncode}; see {var / 'log' / (name + '.log')}"
                    )
            time.sleep(1)

    def _start_redis(self, var: Path) -> str:
        port = int(os.environ.get("VRCONSOLE_REDIS_PORT", "6391"))
        redis = shutil.which("redis-server")
        if redis is None:
            raise CommandError("redis-server is not installed (scripts/run installs it) and REDIS_URL is not set")
        self._spawn(
            "redis",
            [redis, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(var)],
            dict(os.environ),
            var,
        )
        self._wait_for_port(port, "Redis")
        return f"redis://127.0.0.1:{port}/0"

    # -- process plumbing --------------------------------------------------------------

    def _check(self, cmd: list[str], env: dict[str, str], what: str) -> None:
        result = subprocess.run(cmd, env=env, check=False)
        if result.returncode != 0:
            raise CommandError(f"could not {what} (exit status {result.returncode})")

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], var: Path) -> None:
        log = open(var / "log" / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))

    def _wait_for_port(self, port: int, what: str, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((host, port)) == 0:
                    return
            time.sleep(0.2)
        raise CommandError(f"{what} did not start listening on {host}:{port} within {timeout:.0f} s")

    def _stop_all(self, env: dict[str, str]) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self.children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.lab_up:
            subprocess.run(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "lab", "down", "--name", LAB_NAME],
                env=env,
                check=False,
            )


_DEMO_USER_SCRIPT = f"""
from django.contrib.auth.models import Group, User
from vrconsole.roles import OPERATOR, VIEWER
for name in (OPERATOR, VIEWER):
    Group.objects.get_or_create(name=name)
user, _ = User.objects.get_or_create(username={DEMO_USER!r})
user.set_password({DEMO_PASSWORD!r})
user.is_staff = False
user.save()
user.groups.add(Group.objects.get(name=OPERATOR))
"""
