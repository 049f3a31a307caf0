"""The README's commands work as written: every command it shows exists, with every option it uses.

Each `manage.py` line of the README's shell blocks is checked against that command's own
`--help` (run as a subprocess, with the environment the line sets); fault specs are checked
against the lab that would be built; `scripts/run` options against `run_local --help`; the
benchmarks' scripts exist and answer `--help`. Running them for real is what the demo, the
suite and the benchmarks do.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from devcloud import lab

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The command lines of the README's ```sh blocks, without their comments."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                lines.append(command)
    return lines


def _help(argv: list[str], env: dict[str, str]) -> str:
    completed = subprocess.run(
        [sys.executable, *argv, "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, f"{' '.join(argv)} --help failed: {completed.stderr[-2000:]}"
    return completed.stdout


def _options(words: list[str]) -> list[str]:
    return [word.split("=")[0].strip("[]") for word in words if word.strip("[").startswith("--")]


def _split(command: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(command.replace("|", " "))
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


MANAGE_LINES = [line for line in readme_commands() if "manage.py" in line]


def test_the_readme_shows_its_commands() -> None:
    commands = readme_commands()
    assert "scripts/run" in commands and "scripts/test" in commands
    assert len(MANAGE_LINES) >= 8


@pytest.mark.parametrize("command", MANAGE_LINES)
def test_every_manage_command_of_the_readme_exists_with_its_options(command: str) -> None:
    extra_env, words = _split(command)
    words = words[words.index("manage.py") :]
    name = words[1]
    argv = ["manage.py", name]
    if name == "lab":
        argv.append(words[2])  # lab's actions are subcommands with options of their own
    # A line that does not switch the dev cloud on must work without it, as in production.
    env = {key: value for key, value in os.environ.items() if key != "VRCONSOLE_DEVCLOUD"} | extra_env
    text = _help(argv, env)
    for option in _options(words[2:]):
        assert option in text, f"{command}: {name} has no option {option}"


def test_the_readme_fault_specs_name_real_lab_routers_and_faults() -> None:
    checked = 0
    for command in readme_commands():
        _, words = _split(command)
        for flag in ("--faults", "--lab-faults"):
            if flag in words:
                routers = int(words[words.index("--routers") + 1]) if "lab" in words and "--routers" in words else None
                lab.parse_fault_spec(words[words.index(flag) + 1], lab.plan_lab("vrc", 0, routers))
                checked += 1
        if "lab" in words and words[words.index("lab") + 1 : words.index("lab") + 2] in (["fault"], ["clear"]):
            at = words.index("lab")
            router, fault = words[at + 2], words[at + 3]
            assert fault in lab.FAULTS
            assert router in {r.name for r in lab.plan_lab("vrc", 0).routers}
            checked += 1
    # Also the inline example of the two-commands section.
    inline = re.findall(r"`scripts/run [^`]*--lab-faults ([^` ]+)`", (ROOT / "README.md").read_text())
    for spec in inline:
        lab.parse_fault_spec(spec, lab.plan_lab("vrc", 0))
        checked += 1
    assert checked >= 3


def test_the_options_of_scripts_run_exist() -> None:
    inline = re.findall(r"`(scripts/run [^`]*)`", (ROOT / "README.md").read_text())
    text = _help(["manage.py", "run_local"], {**os.environ, "VRCONSOLE_DEVCLOUD": "true"})
    options = {option for line in inline for option in _options(shlex.split(line))} - {"--help"}
    assert options and all(option in text for option in options), options
    # --help names the lab's routers and faults, as the README promises.
    assert "r-10-VM" in text and "dnsmasq-down" in text


def test_the_benchmarks_of_the_readme_exist_and_answer_help() -> None:
    benches = [line.split()[1] for line in readme_commands() if line.startswith(".venv/bin/python bench/")]
    assert benches
    for script in benches:
        assert (ROOT / script).is_file(), script
        _help([script], dict(os.environ))
