"""Tools that capture the probes' golden fixtures (tests/fixtures/<probe>/) from real software.

`namespaces` runs every probe's command in namespaces laid out like a VR (files from
`vr_files`); `lab_routers` runs the real collection against lab routers. Both are run by
hand as root (`python -m devcloud.capture.namespaces`), never by the tests.
"""
