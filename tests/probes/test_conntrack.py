"""Conntrack fill and per-CPU counters."""

from __future__ import annotations

from diagnostics.probes import conntrack

STAT = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error "
    " expect_new expect_create expect_delete search_restart\n"
    "000003e8  00000000 00000001 00000000 00000002 00000000 00000000 00000000 00000000 00000001 0000000a 00000005 "
    "00000000  00000000 00000000 00000000 00000000\n"
    "000003e8  00000000 00000001 00000000 00000002 00000000 00000000 00000000 00000000 00000001 0000000a 00000005 "
    "00000000  00000000 00000000 00000000 00000003\n"
)


def _output(count: str = "950000", maximum: str = "1000000") -> str:
    return (
        f"==> nf_conntrack_count <==\n{count}\n==> nf_conntrack_max <==\n{maximum}\n"
        f"==> nf_conntrack_buckets <==\n262144\n==> stat <==\n{STAT}"
    )


def test_it_computes_how_full_the_table_is() -> None:
    facts = conntrack.parse(_output())
    assert (facts.count, facts.max, facts.used_percent) == (950000, 1000000, 95.0)


def test_it_sums_hex_counters_over_cpus() -> None:
    facts = conntrack.parse(_output())
    assert (facts.drop, facts.early_drop, facts.insert_failed, facts.search_restart) == (20, 10, 2, 3)


def test_it_does_not_sum_the_global_entries_column() -> None:
    assert conntrack.parse(_output()).counters["entries"] == 1000


def test_it_reports_a_kernel_without_conntrack_as_not_loaded() -> None:
    missing = "cat: /proc/sys/net/netfilter/nf_conntrack_count: No such file or directory"
    facts = conntrack.parse(_output(count=missing, maximum=missing.replace("count", "max")))
    assert (facts.loaded, facts.used_percent) == (False, 0.0)
