"""The lab's record of what it made, so `down` removes exactly that and nothing else.

Each lab keeps `state.json` in its own directory (settings.VAR_DIR/lab/<name>/). Every kernel
object is recorded *before* it is created, so a partial or failed `up` still leaves a record
that `down` can walk; removing something that was never created is harmless. The file is
rewritten atomically (write then rename) because tests, the command and fault injection read it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from django.conf import settings


@dataclass
class LabState:
    """What one lab created and what is currently injected into it."""

    name: str
    block: int
    router_count: int | None
    status: str = "building"
    created: str = ""
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    mount_files: list[str] = field(default_factory=list)
    private_mounts: list[str] = field(default_factory=list)
    created_ramdisk_dir: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)


def labs_root() -> Path:
    """The directory holding every lab (settings.VAR_DIR/lab)."""
    return Path(settings.VAR_DIR) / "lab"


def lab_dir(name: str) -> Path:
    """The directory of one lab."""
    return labs_root() / name


def state_path(name: str) -> Path:
    """Where a lab's state file lives."""
    return lab_dir(name) / "state.json"


def load_state(name: str) -> LabState | None:
    """The lab's recorded state, or None when no lab of that name exists."""
    path = state_path(name)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    # A state file written by another version of the lab may carry fields this one lacks.
    known = {item.name for item in fields(LabState)}
    return LabState(**{key: value for key, value in data.items() if key in known})


def save_state(state: LabState) -> None:
    """Write the state atomically."""
    write_atomically(state_path(state.name), json.dumps(asdict(state), indent=2, sort_keys=True).encode())


def delete_state(name: str) -> None:
    """Forget a lab (after `down` removed everything it recorded)."""
    state_path(name).unlink(missing_ok=True)


def all_lab_names() -> list[str]:
    """Every lab that has a state file."""
    root = labs_root()
    if not root.exists():
        return []
    return sorted(path.parent.name for path in root.glob("*/state.json"))


def write_atomically(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Write a file so readers never see it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    temporary.chmod(mode)
    os.replace(temporary, path)
