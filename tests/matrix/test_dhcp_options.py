"""dhcpopts.txt against the tags of dhcphosts.txt: a non-default NIC must keep its option 3/6/15 lines."""

from __future__ import annotations

from diagnostics.matrix.rules import dhcp_options
from diagnostics.probes.dnsmasq import DHCPOPTS
from tests.matrix.builders import changed, context, parsed


def _facts(case: str) -> dict[str, object]:
    return {"dnsmasq": parsed("dnsmasq", case)}


def test_it_is_quiet_when_every_tag_has_its_options() -> None:
    for case in ("healthy", "lab_isolated"):
        assert dhcp_options.DHCPOPTS_TAG_MISSING.check(context(facts=_facts(case))) == []


def test_it_names_the_vm_whose_tag_lost_its_options_on_a_lab_router() -> None:
    [verdict] = dhcp_options.DHCPOPTS_TAG_MISSING.check(context(facts=_facts("lab_dhcpopts_tag_missing")))
    assert verdict.evidence[0] == (
        "vm-4-2 02:00:00:04:aa:02 10.1.4.12: tag 10_1_4_12 has no option 3, 6, 15 in /etc/dhcpopts.txt"
    )
    assert (verdict.category, verdict.severity) == ("dhcp", "warning")


def test_it_names_only_the_options_that_are_gone() -> None:
    facts = parsed("dnsmasq", "healthy")
    kept = tuple(option for option in facts.options if option.option != "6")
    [verdict] = dhcp_options.DHCPOPTS_TAG_MISSING.check(context(facts={"dnsmasq": changed(facts, options=kept)}))
    assert verdict.evidence[0].endswith("tag 10_1_1_15 has no option 6 in /etc/dhcpopts.txt")


def test_it_says_so_when_dhcpopts_is_missing_altogether() -> None:
    facts = changed(parsed("dnsmasq", "healthy"), options=(), missing=(DHCPOPTS,))
    [verdict] = dhcp_options.DHCPOPTS_TAG_MISSING.check(context(facts={"dnsmasq": facts}))
    assert verdict.evidence[0] == "No such file or directory: '/etc/dhcpopts.txt'"


def test_it_says_nothing_without_dhcphosts_or_the_probe() -> None:
    assert dhcp_options.DHCPOPTS_TAG_MISSING.check(context(facts=_facts("files_missing"))) == []
    assert dhcp_options.DHCPOPTS_TAG_MISSING.check(context(facts={})) == []
