"""The VR's service processes from `ps`: which run, their pids and states, and defunct children.

haproxy reloads leave `<defunct>` children when the parent does not reap them; on
redundant routers only the PRIMARY runs dnsmasq and the password server, so "not
running" means something only together with the VRRP state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, clean_lines, parse_int

COMMAND = "ps -eo pid=,ppid=,stat=,etimes=,args= | head -n 5000"

# service -> what identifies its processes: the program name, or a pattern on the command line
SERVICES: dict[str, re.Pattern[str]] = {
    "dnsmasq": re.compile(r"^dnsmasq$"),
    "haproxy": re.compile(r"^haproxy$"),
    "keepalived": re.compile(r"^keepalived$"),
    "conntrackd": re.compile(r"^conntrackd$"),
    "sshd": re.compile(r"^sshd$"),
    "charon": re.compile(r"^charon(-systemd)?$"),
    "apache2": re.compile(r"^apache2$"),
    "password_server": re.compile(r"passwd_server|cloud-password-server"),
}
_PASSWORD_SERVER = "password_server"
_LINE = re.compile(r"^\s*(?P<pid>\d+)\s+(?P<ppid>\d+)\s+(?P<stat>\S+)\s+(?P<etimes>\d+)\s?(?P<args>.*)$")
_BRACKETED = re.compile(r"^\[(?P<name>[^\]]*)\]( <defunct>)?$")


@dataclass(frozen=True)
class Process(Facts):
    """One ps line; `name` is the program (from `[name]` for kernel threads and zombies)."""

    pid: int
    ppid: int
    state: str
    elapsed_seconds: int
    name: str
    args: str

    @property
    def defunct(self) -> bool:
        """A zombie: exited but not reaped by its parent."""
        return self.state.startswith("Z")


@dataclass(frozen=True)
class Service(Facts):
    """One watched service: live processes (not zombies) and how many defunct ones it left."""

    name: str
    running: bool
    pids: tuple[int, ...]
    states: tuple[str, ...]
    defunct: int
    oldest_seconds: int


@dataclass(frozen=True)
class ProcessesFacts(Facts):
    """The watched services and whole-system counts."""

    services: tuple[Service, ...]
    process_count: int
    zombie_count: int

    def service(self, name: str) -> Service:
        """One of SERVICES by name."""
        return next(s for s in self.services if s.name == name)


def _program(args: str) -> str:
    bracketed = _BRACKETED.match(args)
    if bracketed:
        return bracketed["name"]
    first = args.split(" ", 1)[0] if args else ""
    # sshd retitles itself `sshd: root@pts/0` or `sshd: /usr/sbin/sshd -D [listener] ...`.
    return os.path.basename(first.rstrip(":"))


def _process(line: str) -> Process:
    match = _LINE.match(line)
    if not match:
        raise ParseError(f"expected 'pid ppid stat etimes args' from ps, got {line[:80]!r}")
    args = match["args"].strip()
    return Process(
        pid=parse_int(match["pid"], "pid"),
        ppid=parse_int(match["ppid"], "ppid"),
        state=match["stat"],
        elapsed_seconds=parse_int(match["etimes"], "etimes"),
        name=_program(args),
        args=args,
    )


def _matches(service: str, process: Process) -> bool:
    if service == _PASSWORD_SERVER:
        return bool(SERVICES[service].search(process.args))
    return bool(SERVICES[service].match(process.name))


def parse(text: str) -> ProcessesFacts:
    """Every line must be a ps line; empty output is refused (ps always sees itself)."""
    processes = [_process(line) for line in clean_lines(text) if line.strip()]
    if not processes:
        raise ParseError("expected at least one process from ps")
    services = []
    for name in SERVICES:
        mine = [p for p in processes if _matches(name, p)]
        live = [p for p in mine if not p.defunct]
        services.append(
            Service(
                name=name,
                running=bool(live),
                pids=tuple(p.pid for p in live),
                states=tuple(p.state for p in live),
                defunct=sum(1 for p in mine if p.defunct),
                oldest_seconds=max((p.elapsed_seconds for p in live), default=0),
            )
        )
    return ProcessesFacts(
        services=tuple(services),
        process_count=len(processes),
        zombie_count=sum(1 for p in processes if p.defunct),
    )
