"""The house rules of the layout: the product never needs the dev cloud, and modules import one way.

These read the source as text (ast) or run manage.py with production settings; none needs a
database.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("vrconsole", "diagnostics")
DEV_COMMANDS = {"lab", "cloudstack_sim", "run_local"}


def _modules(packages: tuple[str, ...]) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            if "rootfs" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Every module name the file imports, at the top or inside a function, relative ones resolved."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _import_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    modules = _modules(packages)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported in _imported_names(name, path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            # Importing a submodule imports its package: that edge is Python's, not a design choice.
            if imported and imported != name and not name.startswith(imported + "."):
                graph[name].add(imported)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert _cycles(_import_graph((*PRODUCT, "devcloud"))) == []


def test_the_product_never_imports_the_dev_cloud() -> None:
    graph = _import_graph((*PRODUCT, "devcloud"))
    offenders = {
        name: sorted(target for target in targets if target.startswith("devcloud"))
        for name, targets in graph.items()
        if not name.startswith("devcloud")
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_no_app_imports_the_projects_composition_root() -> None:
    root = {"vrconsole.urls", "vrconsole.routing", "vrconsole.asgi", "vrconsole.schedules"}
    graph = _import_graph((*PRODUCT, "devcloud"))
    offenders = {name: sorted(graph[name] & root) for name in graph if name not in root}
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_no_two_product_modules_share_a_name_for_different_things() -> None:
    # Django's conventional module names (models, views, urls...) mean the same thing in every app.
    conventional = {
        *("__init__", "apps", "models", "views", "urls", "admin", "jobs", "consumers", "routing", "queries"),
        *("management", "commands", "migrations", "templatetags"),
    }
    seen: dict[str, list[str]] = {}
    for name in _modules(PRODUCT):
        if ".management.commands." in name or ".migrations." in name or ".probes." in name or ".rules." in name:
            continue
        seen.setdefault(name.rpartition(".")[2], []).append(name)
    assert {short: full for short, full in seen.items() if len(full) > 1 and short not in conventional} == {}


def test_production_settings_offer_no_dev_cloud_command(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "VRCONSOLE_DEVCLOUD"}
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": "layout-test-0123456789abcdefghijklmnopqrstuvwxyz",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
        }
    )
    listed = subprocess.run(
        [sys.executable, "manage.py", "help", "--commands"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert "sync_routers" in listed and "triage" in listed
    assert DEV_COMMANDS.isdisjoint(listed)


def test_the_image_does_not_contain_the_dev_cloud() -> None:
    copies = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    sources = {source.rstrip("/") for words in copies for source in words[1:-1]}
    assert "devcloud" not in sources and "." not in sources
    assert {"vrconsole", "diagnostics", "templates", "static"} <= sources


def test_no_lab_or_simulator_module_lives_in_the_product() -> None:
    names = set(_modules(PRODUCT))
    assert not [name for name in names if ".lab" in name or "simulator" in name or "sim_" in name]
