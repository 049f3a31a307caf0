"""dnsmasq files: host entries in both forms, stale leases, cloud.conf ranges and options."""

from __future__ import annotations

from diagnostics.probes import dnsmasq


def _output(**files: str) -> str:
    names = {
        "leases": dnsmasq.LEASES,
        "hosts": dnsmasq.DHCPHOSTS,
        "opts": dnsmasq.DHCPOPTS,
        "conf": dnsmasq.DNSMASQ_CONF,
        "cloud": dnsmasq.CLOUD_CONF,
    }
    return "".join(f"==> {path} <==\n{files.get(key, '')}" for key, path in names.items())


def test_it_reads_the_tagged_form_of_a_host_entry() -> None:
    facts = dnsmasq.parse(_output(hosts="02:00:4c:5e:00:03,set:10_1_1_15,10.1.1.15,db-1,infinite\n"))
    host = facts.hosts[0]
    assert (host.mac, host.tag, host.ip, host.hostname, host.lease_time) == (
        "02:00:4c:5e:00:03",
        "10_1_1_15",
        "10.1.1.15",
        "db-1",
        "infinite",
    )


def test_it_finds_a_lease_held_by_another_mac() -> None:
    facts = dnsmasq.parse(
        _output(
            hosts="02:00:4c:5e:00:02,10.1.1.14,web-2,infinite\n",
            leases="0 1e:00:ac:00:08:8d 10.1.1.14 old-web-2 *\n",
        )
    )
    assert [(s.ip, s.lease_mac, s.host_mac) for s in facts.stale_leases] == [
        ("10.1.1.14", "1e:00:ac:00:08:8d", "02:00:4c:5e:00:02")
    ]


def test_it_does_not_call_a_matching_lease_stale() -> None:
    facts = dnsmasq.parse(
        _output(hosts="02:00:4c:5e:00:02,10.1.1.14,web-2,infinite\n", leases="0 02:00:4C:5E:00:02 10.1.1.14 web-2 *\n")
    )
    assert facts.stale_leases == ()


def test_it_reports_addresses_given_twice_in_dhcphosts() -> None:
    hosts = "02:00:00:00:00:01,10.1.1.20,a,infinite\n02:00:00:00:00:02,10.1.1.20,b,infinite\n"
    assert dnsmasq.parse(_output(hosts=hosts)).duplicate_host_ips == ("10.1.1.20",)


def test_it_reads_ranges_and_their_tagged_options_from_cloud_conf() -> None:
    cloud = "dhcp-range=set:interface-eth0-0,10.1.1.1,static\ndhcp-option=tag:interface-eth0-0,3,10.1.1.1\n"
    facts = dnsmasq.parse(_output(cloud=cloud))
    assert [(r.tag, r.start, r.mode) for r in facts.ranges] == [("interface-eth0-0", "10.1.1.1", "static")]
    assert [(o.tag, o.option, o.value) for o in facts.range_options] == [("interface-eth0-0", "3", "10.1.1.1")]


def test_it_takes_the_last_dhcp_lease_max() -> None:
    facts = dnsmasq.parse(_output(conf="dhcp-lease-max=2100\n", cloud="dhcp-lease-max=5000\n"))
    assert facts.dhcp_lease_max == 5000


def test_it_counts_lines_it_cannot_read_instead_of_failing() -> None:
    assert dnsmasq.parse(_output(leases="garbage\n", hosts="nonsense\n")).unparsed_lines == 2
