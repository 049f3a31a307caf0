"""`manage.py cloudstack_sim`: serves in the foreground, prints a cs ini section, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cs import CloudStack

from devcloud.simulator.server import DEMO_API_KEY, DEMO_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_it_serves_until_sigterm_and_prints_the_demo_credentials() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = [sys.executable, "-u", "manage.py", "cloudstack_sim", "--port", "0", "--routers", "5"]
    command += ["--version", "4.18.1.0"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("secret = "):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else "no output"
            lines.append(line.strip())
        settings = dict(line.split(" = ", 1) for line in lines if " = " in line)
        api = CloudStack(endpoint=settings["endpoint"], key=settings["key"], secret=settings["secret"])
        version = api.listCapabilities()["capability"]["cloudstackversion"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert "[simulator]" in lines
    assert (settings["key"], settings["secret"], version) == (DEMO_API_KEY, DEMO_SECRET_KEY, "4.18.1.0")
    assert process.returncode == 0
