"""The resource rules: memory, filesystem space, inodes, logs that do not rotate, deleted logs held open."""

from __future__ import annotations

from diagnostics.matrix.rules import resources
from diagnostics.probes import logfiles
from tests.matrix.builders import changed, context, isolated_router, parsed


def test_it_reports_memory_near_full() -> None:
    system = changed(parsed("system", "captured"), mem_used_percent=98.2, mem_available_kb=444306)
    [verdict] = resources.MEMORY_HIGH.check(context(facts={"system": system}))
    assert verdict.severity == "critical"
    assert verdict.evidence[0] == "MemTotal 24,683,656 kB, MemAvailable 444,306 kB (98.2 % used)"


def test_it_says_nothing_of_ample_memory() -> None:
    assert resources.MEMORY_HIGH.check(context(facts={"system": parsed("system", "captured")})) == []


def test_it_reports_a_full_var_log() -> None:
    [verdict] = resources.SPACE.check(context(facts={"disk": parsed("disk", "var_log_full")}))
    assert verdict.severity == "critical"
    assert verdict.evidence[0] == "df /var/log (tmpfs): 100 % used, 0 kB free of 1,024 kB"


def test_it_reports_a_shared_filesystem_once() -> None:
    disk = parsed("disk", "captured")
    full = changed(disk, filesystems=tuple(changed(f, used_percent=90) for f in disk.filesystems))
    assert [v.title for v in resources.SPACE.check(context(facts={"disk": full}))] == ["/ 90 % full", "/var 90 % full"]


def test_it_says_nothing_of_roomy_filesystems() -> None:
    assert resources.SPACE.check(context(facts={"disk": parsed("disk", "captured")})) == []


def test_it_reports_inode_exhaustion() -> None:
    [verdict] = resources.INODES.check(context(facts={"disk": parsed("disk", "var_log_out_of_inodes")}))
    assert "/var/cache/cloud/processed" in verdict.remediation
    assert verdict.evidence[0] == "df -i /var/log (tmpfs): 64 of 64 inodes used (100 %), 0 free"


def test_it_says_nothing_of_plenty_of_inodes() -> None:
    assert resources.INODES.check(context(facts={"disk": parsed("disk", "captured")})) == []


def test_it_reports_a_big_log_with_no_rotated_sibling() -> None:
    facts = logfiles.parse(
        "==> files <==\n52428800 1742334000 /var/log/daemon.log\n1185 1742334000 /var/log/cloud.log\n==> deleted <==\n"
    )
    [verdict] = resources.NOT_ROTATING.check(context(facts={"logfiles": facts}))
    assert verdict.evidence == ("/var/log/daemon.log: 50.0 MB, no rotated sibling (/var/log/daemon.log.1, .gz ...)",)


def test_it_accepts_a_big_log_that_rotates() -> None:
    assert resources.NOT_ROTATING.check(context(facts={"logfiles": parsed("logfiles", "rotated")})) == []


def test_it_reports_a_deleted_log_held_open() -> None:
    [verdict] = resources.DELETED_OPEN.check(
        context(facts={"logfiles": parsed("logfiles", "deleted_haproxy_log_held_by_rsyslog")})
    )
    assert "pid 11 fd 3: /var/log/haproxy.log.1 (deleted), 3.0 GB" in verdict.evidence
    assert "systemctl restart rsyslog" in verdict.remediation


def test_it_says_nothing_when_no_deleted_file_is_open() -> None:
    assert resources.DELETED_OPEN.check(context(facts={"logfiles": parsed("logfiles", "rotated")})) == []


def test_it_leaves_sparse_and_binary_records_to_their_own_tools() -> None:
    facts = logfiles.parse(
        "==> files <==\n292292000 1742334000 /var/log/lastlog\n52428800 1742334000 /var/log/journal/abc/system.journal\n==> deleted <==\n"
    )
    assert resources.NOT_ROTATING.check(context(facts={"logfiles": facts})) == []


def test_it_reports_a_redundant_router_without_its_ramdisk() -> None:
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    [verdict] = resources.RAMDISK_MISSING.check(context(router, {"disk": parsed("disk", "captured")}))
    assert (verdict.category, verdict.evidence) == ("vrrp", ("df /ramdisk: does not exist",))


def test_it_expects_no_ramdisk_on_a_router_that_is_not_redundant() -> None:
    assert resources.RAMDISK_MISSING.check(context(facts={"disk": parsed("disk", "captured")})) == []


def test_it_accepts_the_ramdisk_tmpfs_of_a_redundant_router() -> None:
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    assert resources.RAMDISK_MISSING.check(context(router, {"disk": parsed("disk", "lab_isolated")})) == []
