"""Every symbol the console shows renders with the fonts a Debian browser has (fonts-dejavu).

A glyph no installed face has draws as an empty box: the "stuck" chip once did (⧗ is in no
DejaVu face). This reads every character beyond ASCII in the templates, the page scripts and
stylesheets and the Python that writes page text, and asks fontconfig whether a DejaVu face
covers it.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    *ROOT.glob("templates/**/*.html"),
    *ROOT.glob("static/js/*.js"),
    *ROOT.glob("static/css/*.css"),
    # Python that builds page text (template tags, statuses, action plans...): all of the product's.
    *ROOT.glob("vrconsole/**/*.py"),
    *ROOT.glob("diagnostics/**/*.py"),
]

pytestmark = pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig is not installed")


@cache
def dejavu_has(character: str) -> bool:
    faces = subprocess.run(
        ["fc-list", f":charset={ord(character):x}", "family"], capture_output=True, text=True, check=True
    ).stdout
    return "DejaVu" in faces


def used_characters() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in SOURCES:
        for character in path.read_text():
            if ord(character) > 127 and character not in found:
                found[character] = str(path.relative_to(ROOT))
    return found


def test_the_fonts_are_installed() -> None:
    if not dejavu_has("A"):
        pytest.skip("fonts-dejavu is not installed here")


def test_every_symbol_the_console_uses_is_in_a_dejavu_face() -> None:
    if not dejavu_has("A"):
        pytest.skip("fonts-dejavu is not installed here")
    missing = {f"{c} U+{ord(c):04X}": where for c, where in used_characters().items() if not dejavu_has(c)}
    assert missing == {}
