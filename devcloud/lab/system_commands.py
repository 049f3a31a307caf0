"""Running the lab's system commands: argv lists only, bounded time, output kept for errors.

Every kernel or daemon change the lab makes goes through here, as a list of arguments (never
a shell string), so that router names or file contents can never become shell syntax. Commands
run inside a router use `nsenter` with the router's network namespace and its persistent
mount, UTS and PID namespace files (nsenter forks into the PID namespace, so the command and
everything it starts see only the router's own processes, as an SSH session into the router does).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 60.0


class LabCommandError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


def run(argv: Sequence[str], stdin: bytes | None = None, timeout: float = DEFAULT_TIMEOUT, check: bool = True) -> str:
    """Run argv and return its stdout; raise LabCommandError on failure when check is set."""
    try:
        completed = subprocess.run(
            list(argv),
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LabCommandError(f"{' '.join(argv)}: {error}") from error
    if check and completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace").strip()[-2000:]
        raise LabCommandError(f"{' '.join(argv)} exited {completed.returncode}: {stderr}")
    return completed.stdout.decode(errors="replace")


def netns_path(namespace: str) -> str:
    """Where `ip netns` keeps a named network namespace."""
    return f"/run/netns/{namespace}"


def uts_file(mount_file: Path) -> Path:
    """The file pinning the UTS namespace (the router's hostname) next to its mount namespace."""
    return mount_file.with_name(f"{mount_file.name}.uts")


def pid_file(mount_file: Path) -> Path:
    """The file pinning the PID namespace (the router's own process list) next to its mount namespace."""
    return mount_file.with_name(f"{mount_file.name}.pid")


def inside(namespace: str, mount_file: Path | None, argv: Sequence[str]) -> list[str]:
    """argv wrapped to run in a lab namespace (and its mount, UTS and PID namespaces when it has them)."""
    wrapped = ["nsenter", f"--net={netns_path(namespace)}"]
    if mount_file is not None:
        wrapped.append(f"--mount={mount_file}")
        wrapped.append(f"--uts={uts_file(mount_file)}")
        pinned_pid = pid_file(mount_file)
        # A lab built before routers had their own PID namespace has no such file.
        if pinned_pid.exists():
            wrapped.append(f"--pid={pinned_pid}")
    return [*wrapped, "--", *argv]


def run_inside(
    namespace: str,
    mount_file: Path | None,
    argv: Sequence[str],
    stdin: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
) -> str:
    """Run argv inside a lab namespace and return its stdout."""
    return run(inside(namespace, mount_file, argv), stdin=stdin, timeout=timeout, check=check)


def write_inside(namespace: str, mount_file: Path, path: str, content: bytes, append: bool = False) -> None:
    """Write (or append to) a file at its real path inside a router's mount namespace."""
    tee = ["tee", "-a", path] if append else ["tee", path]
    run_inside(namespace, mount_file, tee, stdin=content)


def ip_batch(lines: Sequence[str], namespace: str | None = None) -> None:
    """Apply several `ip` commands in one process (one fork instead of dozens per router)."""
    if not lines:
        return
    argv = ["ip", "-batch", "-"] if namespace is None else ["ip", "-n", namespace, "-batch", "-"]
    run(argv, stdin=("\n".join(lines) + "\n").encode())
