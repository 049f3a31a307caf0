"""A process named haproxy whose children exit and are never reaped: real defunct haproxy children.

Run inside a router (as `haproxy`, through `exec -a`) by the zombie-haproxy fault. It detaches,
names itself and its children `haproxy` (so `ps` shows `[haproxy] <defunct>`), lets the children
exit, and never waits for them, which is what a wedged haproxy master looks like. Stdlib only.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

PR_SET_NAME = 15
CHILDREN = 3


def name_process(name: bytes) -> None:
    """Set this process's comm, which is what ps shows for a zombie."""
    ctypes.CDLL(None).prctl(PR_SET_NAME, name, 0, 0, 0)


def main(pid_file: str) -> None:
    """Detach, write the pid file, fork children that exit, and sleep without reaping them."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    name_process(b"haproxy")
    with open(pid_file, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    for _ in range(CHILDREN):
        if os.fork() == 0:
            name_process(b"haproxy")
            os._exit(0)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1])
