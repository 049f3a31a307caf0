"""Populate a lab namespace's private mount namespace; run as a script by `unshare --mount=FILE`.

The builder starts `unshare --mount=<file> --propagation private python3 mount_namespace.py
<plan.json>`: unshare creates the mount namespace and pins it to <file>, and this script (stdlib
only, so it starts fast) applies the mounts that give the router its own /etc, /var, /opt, /root
(overlays on the machine's directories, so nothing outside the lab changes) and its own small
/var/log, /ramdisk and /run tmpfs, then seeds the tmpfs with the router's initial files and sets the hostname in its UTS namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys


def apply_mount(step: dict[str, str]) -> None:
    """Apply one step of the plan: an overlay, a tmpfs, a seed copy or a directory."""
    kind = step["kind"]
    if kind == "overlay":
        options = f"lowerdir={step['lower']},upperdir={step['upper']},workdir={step['work']}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, step["target"]], check=True)
    elif kind == "tmpfs":
        options = f"size={step['size']},mode={step.get('mode', '0755')}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", step["target"]], check=True)
    elif kind == "seed":
        shutil.copytree(step["source"], step["target"], dirs_exist_ok=True, symlinks=True)
    elif kind == "hostname":
        subprocess.run(["hostname", step["target"]], check=True)
    elif kind == "mkdir":
        os.makedirs(step["target"], exist_ok=True)
    else:
        raise SystemExit(f"unknown mount step {kind!r}")


def main(plan_path: str) -> None:
    """Apply every step in the JSON plan, in order."""
    with open(plan_path) as handle:
        steps = json.load(handle)
    for step in steps:
        apply_mount(step)


if __name__ == "__main__":
    main(sys.argv[1])
