"""Populate a lab namespace's private mount namespace, then stay as PID 1 of its PID namespace.

The builder starts `nsenter --net=<netns> unshare --mount=<file> --uts=<file.uts> --pid=<file.pid>
--fork --propagation private python3 mount_namespace.py <plan.json>`: unshare creates the mount,
UTS and PID namespaces, pins them to files and runs this script (stdlib only, so it starts fast)
as the namespace's first process. As PID 1 of the router it applies the mounts that give the
router its own /etc, /var, /opt, /root (overlays on the machine's directories, so nothing outside
the lab changes), its own small /var/log, /ramdisk and /run tmpfs, its own /dev/log (an overlay on
the machine's /dev, where its rsyslogd makes the socket) and a /proc of its own PID namespace, seeds the tmpfs, sets the hostname, prints a ready line and then becomes a small
bash that lives for the lab's life reaping orphans, as init does on a real VR. Killing it ends
every process of the router.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

READY_LINE = "namespace ready\n"
INIT_NAME = "vrconsole-lab-init"
REAPER_SCRIPT = "trap 'exit 0' TERM; while :; do sleep infinity & wait; done"


def _hold(kept_paths: list[str]) -> list[tuple[str, str]]:
    """Hold mounts aside by a bind mount each (in /run, mounted before), to move back over a new mount."""
    held = []
    for index, kept in enumerate(kept_paths):
        holder = f"/run/.lab-keep-{index}"
        os.makedirs(holder, exist_ok=True)
        subprocess.run(["mount", "--bind", kept, holder], check=True)
        held.append((holder, kept))
    return held


def _move_back(held: list[tuple[str, str]]) -> None:
    for holder, kept in held:
        os.makedirs(kept, exist_ok=True)
        subprocess.run(["mount", "--move", holder, kept], check=True)
        os.rmdir(holder)


def apply_mount(step: dict[str, str]) -> None:
    """Apply one step of the plan: an overlay, a tmpfs, a seed copy, /proc or a directory."""
    kind = step["kind"]
    if kind == "overlay":
        options = f"lowerdir={step['lower']},upperdir={step['upper']},workdir={step['work']}"
        # Mounts below the target (/dev/pts, /dev/shm under /dev) stay visible through the overlay.
        held = _hold(list(step.get("keep", [])))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, step["target"]], check=True)
        _move_back(held)
    elif kind == "tmpfs":
        options = f"size={step['size']},mode={step.get('mode', '0755')}"
        # /ramdisk is a shared, empty mount point that another checkout's `lab down` may remove.
        os.makedirs(step["target"], exist_ok=True)
        # Directories to keep visible under the new tmpfs are held aside and moved back on top of it.
        held = _hold(list(step.get("keep", [])))
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", step["target"]], check=True)
        _move_back(held)
    elif kind == "proc":
        # procfs shows the PID namespace of the process that mounts it: this one, PID 1.
        subprocess.run(["mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", step["target"]], check=True)
    elif kind == "seed":
        shutil.copytree(step["source"], step["target"], dirs_exist_ok=True, symlinks=True)
    elif kind == "hostname":
        subprocess.run(["hostname", step["target"]], check=True)
    elif kind == "mkdir":
        os.makedirs(step["target"], exist_ok=True)
    else:
        raise SystemExit(f"unknown mount step {kind!r}")


def become_reaper() -> None:
    """Replace this process with a small bash that reaps every child until SIGTERM or SIGKILL."""
    # Daemons that double-fork are re-parented to PID 1. bash reaps any child in its SIGCHLD
    # handler, known job or not, and costs a fraction of this Python's memory at 100 routers.
    # PID 1 exiting (on SIGTERM) makes the kernel kill everything else in the namespace.
    os.execv("/bin/bash", [INIT_NAME, "-c", REAPER_SCRIPT])


def main(plan_path: str) -> None:
    """As PID 1: apply the plan, say so on stdout, detach from the builder and reap forever."""
    with open(plan_path) as handle:
        steps = json.load(handle)
    for step in steps:
        apply_mount(step)
    sys.stdout.write(READY_LINE)
    sys.stdout.flush()
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)
    become_reaper()


if __name__ == "__main__":
    main(sys.argv[1])
