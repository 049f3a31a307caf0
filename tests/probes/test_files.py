"""Log-file sizes and deleted-open files, config redaction, disk and version facts."""

from __future__ import annotations

from diagnostics.probes import config, disk, logfiles, versions


def test_it_groups_rotated_siblings_with_their_log() -> None:
    assert [
        logfiles.base_of(p) for p in ("/var/log/cloud.log.1", "/var/log/cloud.log.2.gz", "/var/log/syslog-20250318")
    ] == [
        "/var/log/cloud.log",
        "/var/log/cloud.log",
        "/var/log/syslog",
    ]


def test_it_sums_deleted_files_still_held_open() -> None:
    text = (
        "==> files <==\n1024 1742334000.0000000000 /var/log/haproxy.log\n==> deleted <==\n"
        "3221225472 /proc/811/fd/7 /var/log/haproxy.log.1 (deleted)\n"
        "4096 /proc/900/fd/3 /memfd:pulseaudio (deleted)\n"
    )
    facts = logfiles.parse(text)
    assert [(d.pid, d.fd, d.path) for d in facts.deleted_open] == [(811, 7, "/var/log/haproxy.log.1")]
    assert facts.deleted_open_bytes == 3221225472


def test_it_redacts_keepalived_and_haproxy_passwords() -> None:
    assert config.redact("        auth_pass c2VjcmV0") == "        auth_pass <redacted>"
    assert config.redact("        stats auth    admin1:AdMiN123") == "        stats auth    <redacted>"
    assert config.redact("    user admin insecure-password s3cret") == "    user admin insecure-password <redacted>"


def test_its_config_hash_ignores_trailing_blanks_and_line_ends() -> None:
    def facts(body: str) -> config.ConfigFacts:
        return config.parse("".join(f"==> {p} <==\n{body}" for p in config.FILES))

    assert facts("|a\n|b\n").files[0].sha256 == facts("|a   \n|b\r\n|\n").files[0].sha256


def test_it_reads_inode_exhaustion_from_df() -> None:
    text = (
        "==> / <==\n/dev/vda6  4123456 2000000 2123456 49% /\n/dev/vda6  262144 1000 261144 1% /\n"
        "==> /var <==\n/dev/vda6  4123456 2000000 2123456 49% /\n/dev/vda6  262144 1000 261144 1% /\n"
        "==> /var/log <==\n/dev/vda7  435000 400000 35000 92% /var\n/dev/vda7  110400 110400 0 100% /var\n"
        "==> /ramdisk <==\n"
    )
    var_log = disk.parse(text).for_path("/var/log")
    assert var_log is not None and (var_log.mount, var_log.used_percent, var_log.inodes_used_percent) == (
        "/var",
        92,
        100,
    )


def test_it_reads_the_template_version_from_the_release_line() -> None:
    text = (
        "==> release <==\nCloudstack Release 4.18.0 Tue May 14 10:00:00 UTC 2023\n"
        "==> signature <==\n3C9D7F1E0B2A4C6D8E0F1A2B3C4D5E6F\n==> boot_up_done <==\npresent\n"
    )
    facts = versions.parse(text)
    assert (facts.template_version, facts.scripts_signature, facts.boot_up_done) == (
        "4.18.0",
        "3c9d7f1e0b2a4c6d8e0f1a2b3c4d5e6f",
        True,
    )
