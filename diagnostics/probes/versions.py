"""Template and scripts version of the router: /etc/cloudstack-release and cloud-scripts-signature.

`router_version_check.py` compares the first line of each with what the management server
expects; a template older than the management server is "Router requires upgrade"
(CLOUDSTACK.md §3.4, §5.13). `boot_up_done` is the flag `get_template_version.sh` waits for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, split_sections

COMMAND = (
    "echo '==> release <=='; head -n 3 /etc/cloudstack-release 2>&1 | head -c 4096; "
    "echo '==> signature <=='; head -n 1 /var/cache/cloud/cloud-scripts-signature 2>&1 | head -c 4096; "
    "echo '==> boot_up_done <=='; if [ -e /var/cache/cloud/boot_up_done ]; then echo present; else echo absent; fi"
)

_RELEASE = re.compile(r"^Cloudstack Release (?P<version>\S+)\s*(?P<built>.*)$", re.IGNORECASE)
_SIGNATURE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class VersionsFacts(Facts):
    """The release line as written, the version and build date in it, and the scripts md5.

    Empty strings mean the file is missing or not in the expected form (the health check
    then says "Release version not yet setup"); `release_line` keeps what was there.
    """

    release_line: str
    template_version: str
    built: str
    scripts_signature: str
    boot_up_done: bool


def parse(text: str) -> VersionsFacts:
    """The release, signature and boot_up_done sections."""
    sections = split_sections(text, expected=("release", "signature", "boot_up_done"))
    release = sections["release"]
    release_line = "" if release.missing or not release.lines else release.lines[0].strip()[:200]
    match = _RELEASE.match(release_line)
    signature = sections["signature"]
    signature_line = "" if signature.missing or not signature.lines else signature.lines[0].strip().lower()
    return VersionsFacts(
        release_line=release_line,
        template_version=match["version"] if match else "",
        built=match["built"].strip() if match else "",
        scripts_signature=signature_line if _SIGNATURE.match(signature_line) else "",
        boot_up_done=sections["boot_up_done"].text.strip() == "present",
    )
