"""Third-party browser assets served from the Python packages that ship them, never from a CDN.

plotly.js comes from the installed `plotly` package (its package data holds plotly.min.js), so
its version is the one pinned in pyproject.toml and nothing is copied into the repository.
`PackagedAssetFinder` is a staticfiles finder exposing exactly these files: the development
server and whitenoise find them, and `collectstatic` copies them into STATIC_ROOT for the image.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

# static path -> (package, file inside the package)
PACKAGED_ASSETS: dict[str, tuple[str, str]] = {
    "vendor/plotly/plotly.min.js": ("plotly", "package_data/plotly.min.js"),
}


def asset_path(static_path: str) -> Path | None:
    """Where the installed package keeps one of PACKAGED_ASSETS, or None if it is not installed."""
    package, relative = PACKAGED_ASSETS[static_path]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / relative


class _SingleFileStorage(FileSystemStorage):
    """A storage rooted at the file's directory, as collectstatic expects from a finder."""


class PackagedAssetFinder(BaseFinder):
    """Finds PACKAGED_ASSETS in their installed packages."""

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        missing = [name for name in PACKAGED_ASSETS if (path := asset_path(name)) is None or not path.is_file()]
        return [
            Error(f"static asset {name} not found in its installed package", id="vrconsole.E001") for name in missing
        ]

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        if path in PACKAGED_ASSETS:
            found = asset_path(path)
            if found is not None and found.is_file():
                return [str(found)] if find_all else str(found)
        return [] if find_all else ""

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        for name in PACKAGED_ASSETS:
            found = asset_path(name)
            if found is None or not found.is_file():
                continue
            # The storage's root is the package directory; the path it yields is the static name.
            storage = _SingleFileStorage(location=os.fspath(found.parent))
            storage.prefix = os.path.dirname(name)  # type: ignore[attr-defined]
            yield found.name, storage
