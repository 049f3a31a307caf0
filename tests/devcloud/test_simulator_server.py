"""The CloudStack API simulator seen through the `cs` client over real HTTP: signing, envelopes, rules."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from cs import CloudStack, CloudStackApiException, CloudStackException

from devcloud.simulator.server import (
    CONTROL_TOKEN_HEADER,
    RunningSimulator,
    java_url_encode,
    request_signature,
    start_simulator,
)


def client(sim: RunningSimulator, **options: Any) -> CloudStack:
    return CloudStack(endpoint=sim.url, key=sim.api_key, secret=sim.secret_key, **options)


def api_error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as caught:
        call(**params)
    return caught.value.error


def all_routers(api: CloudStack) -> list[dict[str, Any]]:
    return api.listRouters(fetch_list=True, listall=True) + api.listRouters(fetch_list=True, listall=True, projectid=-1)


def test_it_answers_a_signed_request(cloudstack_sim: RunningSimulator) -> None:
    assert client(cloudstack_sim).listZones()["count"] == 4


def test_it_answers_a_signed_post_with_a_form_body(cloudstack_sim: RunningSimulator) -> None:
    assert client(cloudstack_sim, method="post").listZones()["count"] == 4


def test_it_refuses_a_bad_signature_with_401(cloudstack_sim: RunningSimulator) -> None:
    bad = CloudStack(endpoint=cloudstack_sim.url, key=cloudstack_sim.api_key, secret="not-the-secret")
    error = api_error(bad.listZones)
    assert error == {
        "uuidList": [],
        "errorcode": 401,
        "cserrorcode": 9999,
        "errortext": "unable to verify user credentials and/or request signature",
    }


def test_it_refuses_an_unknown_api_key(cloudstack_sim: RunningSimulator) -> None:
    stranger = CloudStack(endpoint=cloudstack_sim.url, key="nobody", secret=cloudstack_sim.secret_key)
    assert api_error(stranger.listZones)["errorcode"] == 401


def test_it_refuses_an_expired_request(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    error = api_error(api.listZones, signatureVersion="3", expires="2020-01-01T00:00:00+0000")
    assert error["errortext"] == "unable to verify user credentials and/or request signature"


def test_it_requires_expires_with_signature_version_3(cloudstack_sim: RunningSimulator) -> None:
    params = {"command": "listZones", "response": "json", "apiKey": cloudstack_sim.api_key, "signatureVersion": "3"}
    params["signature"] = request_signature(params, cloudstack_sim.secret_key)
    assert requests.get(cloudstack_sim.url, params=params, timeout=5).status_code == 401


def test_it_encodes_tilde_like_java_so_a_python_quoted_signature_fails() -> None:
    assert java_url_encode("a~b c*") == "a%7Eb%20c*"


def test_it_wraps_an_error_in_the_command_response_with_http_status_equal_to_errorcode(
    cloudstack_sim: RunningSimulator,
) -> None:
    params = {"command": "listZones", "response": "json", "apiKey": "x", "signature": "y"}
    response = requests.get(cloudstack_sim.url, params=params, timeout=5)
    assert response.status_code == 401
    assert list(response.json()) == ["listzonesresponse"]


def test_it_refuses_non_json_responses_with_431(cloudstack_sim: RunningSimulator) -> None:
    response = requests.get(cloudstack_sim.url, params={"command": "listZones"}, timeout=5)
    assert response.status_code == 431
    assert "response=json" in response.json()["listzonesresponse"]["errortext"]


def test_it_answers_an_unknown_command_with_432(cloudstack_sim: RunningSimulator) -> None:
    error = api_error(client(cloudstack_sim).listFrobnicators)
    assert error["errorcode"] == 432


def test_it_requires_page_with_pagesize(cloudstack_sim: RunningSimulator) -> None:
    error = api_error(client(cloudstack_sim).listRouters, pagesize=10)
    assert (error["errorcode"], error["errortext"]) == (
        431,
        '"page" parameter is required when "pagesize" is specified',
    )


def test_it_requires_pagesize_with_page(cloudstack_sim: RunningSimulator) -> None:
    params = {"command": "listRouters", "response": "json", "apiKey": cloudstack_sim.api_key, "page": "1"}
    params["signature"] = request_signature(params, cloudstack_sim.secret_key)
    response = requests.get(cloudstack_sim.url, params=params, timeout=5)
    assert (
        response.json()["listroutersresponse"]["errortext"]
        == '"pagesize" parameter is required when "page" is specified'
    )


def test_it_refuses_a_page_size_above_500(cloudstack_sim: RunningSimulator) -> None:
    error = api_error(client(cloudstack_sim).listRouters, page=1, pagesize=501)
    assert error["errortext"] == "Page size can't exceed max allowed page size value: 500"


def test_it_lists_everything_with_pagesize_minus_one(cloudstack_sim: RunningSimulator) -> None:
    answer = client(cloudstack_sim).listRouters(listall=True, pagesize=-1)
    assert answer["count"] == len(answer["router"]) > 0


def test_it_refuses_page_with_unlimited_pagesize(cloudstack_sim: RunningSimulator) -> None:
    assert api_error(client(cloudstack_sim).listRouters, page=1, pagesize=-1)["errorcode"] == 431


def test_it_counts_all_matches_not_the_page(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    total = len(api.listRouters(fetch_list=True, listall=True))
    page = api.listRouters(listall=True, page=2, pagesize=5)
    assert (page["count"], len(page["router"])) == (total, 5)


def test_it_answers_a_page_past_the_end_with_an_empty_object(cloudstack_sim: RunningSimulator) -> None:
    assert client(cloudstack_sim).listRouters(listall=True, page=99, pagesize=500) == {}


def test_it_answers_an_empty_list_without_count_or_items(cloudstack_sim: RunningSimulator) -> None:
    params = {"command": "listRouters", "response": "json", "apiKey": cloudstack_sim.api_key, "name": "r-1-VM"}
    params["signature"] = request_signature(params, cloudstack_sim.secret_key)
    assert requests.get(cloudstack_sim.url, params=params, timeout=5).text == '{"listroutersresponse":{}}'


def test_it_shows_only_the_admin_accounts_routers_without_listall(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True)
    assert routers and {(r["account"], r["domain"]) for r in routers} == {("admin", "ROOT")}


def test_it_hides_project_routers_from_listall(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True, listall=True)
    assert len({r["account"] for r in routers}) > 3
    assert not any("projectid" in r for r in routers)


def test_it_lists_project_routers_with_projectid_minus_one(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True, listall=True, projectid=-1)
    assert routers and all(r.get("projectid") for r in routers)


def test_it_lists_one_projects_routers_by_its_id(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    project = api.listRouters(fetch_list=True, listall=True, projectid=-1)[0]["projectid"]
    routers = api.listRouters(fetch_list=True, projectid=project)
    assert {r["projectid"] for r in routers} == {project}


def test_it_applies_the_same_visibility_to_networks(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    own = api.listNetworks(fetch_list=True)
    everyone = api.listNetworks(fetch_list=True, listall=True)
    projects = api.listNetworks(fetch_list=True, listall=True, projectid=-1)
    assert {n["account"] for n in own} == {"admin"}
    assert len(own) < len(everyone) and projects and not {n["id"] for n in projects} & {n["id"] for n in everyone}


def test_it_gives_a_domain_admin_no_host_link_local_or_nic_fields(cloudstack_sim: RunningSimulator) -> None:
    api = CloudStack(
        endpoint=cloudstack_sim.url,
        key=cloudstack_sim.domain_admin_api_key,
        secret=cloudstack_sim.domain_admin_secret_key,
    )
    routers = api.listRouters(fetch_list=True, listall=True)
    assert routers and all(r["domainpath"].startswith("ROOT/Customers") for r in routers)
    assert not any({"hostid", "linklocalip", "guestipaddress", "nic"} & set(r) for r in routers)


def test_it_reports_master_before_416() -> None:
    with start_simulator(routers=40, seed=3, version="4.15.2.0", prewarm=False) as sim:
        states = {r.get("redundantstate") for r in all_routers(client(sim))}
    assert "MASTER" in states and "PRIMARY" not in states


def test_it_reports_primary_from_416(cloudstack_sim: RunningSimulator) -> None:
    states = {r.get("redundantstate") for r in all_routers(client(cloudstack_sim))}
    assert "PRIMARY" in states and "MASTER" not in states


def test_it_returns_health_check_results_only_when_asked(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    plain = api.listRouters(fetch_list=True, listall=True)
    fetched = api.listRouters(fetch_list=True, listall=True, fetchhealthcheckresults=True)
    assert not any("healthcheckresults" in r for r in plain)
    check = fetched[0]["healthcheckresults"][0]
    assert set(check) == {"checkname", "checktype", "success", "lastupdated", "details"}


def test_it_reports_healthchecksfailed_false_even_for_failing_routers_by_default(
    cloudstack_sim: RunningSimulator,
) -> None:
    api = client(cloudstack_sim)
    router = api.listRouters(listall=True, page=1, pagesize=1)["router"][0]
    cloudstack_sim.set_router(router["id"], failing_checks=["dns_check.py"])
    failing = api.listRouters(fetch_list=True, listall=True, healthchecksfailed=True)
    assert router["id"] in {r["id"] for r in failing} and not any(r["healthchecksfailed"] for r in failing)


def test_it_reports_healthchecksfailed_truthfully_when_the_bug_is_off() -> None:
    with start_simulator(routers=20, seed=7, reproduce_healthchecksfailed_bug=False, prewarm=False) as sim:
        api = client(sim)
        router = api.listRouters(listall=True, page=1, pagesize=1)["router"][0]
        sim.set_router(router["id"], failing_checks=["disk_space_check.py"])
        failing = api.listRouters(fetch_list=True, listall=True, healthchecksfailed=True)
    assert [r["id"] for r in failing] == [router["id"]] and failing[0]["healthchecksfailed"] is True


def test_it_serves_get_router_health_check_results(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    router = api.listRouters(listall=True, state="Running", page=1, pagesize=1)["router"][0]
    answer = api.getRouterHealthCheckResults(routerid=router["id"])["routerhealthchecks"]
    assert answer["routerid"] == router["id"] and answer["healthchecks"]


def test_it_lays_out_isolated_router_nics_guest_control_public(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True, listall=True, forvpc=False)
    assert {tuple(n["traffictype"] for n in r["nic"]) for r in routers} == {("Guest", "Control", "Public")}


def test_it_lays_out_vpc_router_nics_control_public_tiers(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True, listall=True, forvpc=True)
    assert routers and all([n["traffictype"] for n in r["nic"]][:2] == ["Control", "Public"] for r in routers)


def test_it_derives_the_kvm_control_mac_from_the_link_local_ip(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True, listall=True)
    kvm = [r for r in routers if r["hypervisor"] == "KVM"]
    a, b, c, d = (int(x) for x in kvm[0]["linklocalip"].split("."))
    assert kvm[0]["linklocalip"].startswith("169.254.")
    assert kvm[0]["linklocalmacaddress"] == f"0e:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}"


def test_it_gives_vmware_routers_a_pod_private_control_ip(cloudstack_sim: RunningSimulator) -> None:
    routers = client(cloudstack_sim).listRouters(fetch_list=True, listall=True)
    vmware = [r for r in routers if r["hypervisor"] == "VMware"]
    assert vmware and not any(r["linklocalip"].startswith("169.254.") for r in vmware)


def test_it_omits_absent_fields_instead_of_null(cloudstack_sim: RunningSimulator) -> None:
    params = {"command": "listRouters", "response": "json", "apiKey": cloudstack_sim.api_key, "listall": "true"}
    params["signature"] = request_signature(params, cloudstack_sim.secret_key)
    assert "null" not in requests.get(cloudstack_sim.url, params=params, timeout=5).text


def test_it_lists_system_templates(cloudstack_sim: RunningSimulator) -> None:
    templates = client(cloudstack_sim).listTemplates(fetch_list=True, templatefilter="system")
    assert templates and all(t["templatetype"] == "SYSTEM" and t["isready"] for t in templates)


def test_it_reports_its_version_in_list_capabilities(cloudstack_sim: RunningSimulator) -> None:
    assert client(cloudstack_sim).listCapabilities()["capability"]["cloudstackversion"] == "4.20.1.0"


def test_it_reboots_a_router_through_an_async_job(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    router = api.listRouters(listall=True, state="Running", page=1, pagesize=1)["router"][0]
    jobid = api.rebootRouter(id=router["id"])["jobid"]
    pending = api.queryAsyncJobResult(jobid=jobid)
    during = api.listRouters(id=router["id"], listall=True)["router"][0]
    assert (pending["jobstatus"], during["jobid"]) == (0, jobid)
    assert during["state"] in ("Stopping", "Starting")
    time.sleep(0.3)
    done = api.queryAsyncJobResult(jobid=jobid)
    assert (done["jobstatus"], done["jobresultcode"], done["jobresult"]["router"]["state"]) == (1, 0, "Running")
    assert done["cmd"] == "org.apache.cloudstack.api.command.admin.router.RebootRouterCmd"


def test_it_fails_the_reboot_job_of_a_stopped_router(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim, poll_interval=0.1)
    router = api.listRouters(listall=True, state="Running", page=1, pagesize=1)["router"][0]
    cloudstack_sim.set_router(router["id"], state="Stopped")
    with pytest.raises(CloudStackApiException) as caught:
        api.rebootRouter(id=router["id"], fetch_result=True)
    assert caught.value.error["errortext"] == "Unable to reboot domR, it is not in right state Stopped"


def test_it_hands_primary_to_the_backup_while_the_primary_reboots(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    routers = all_routers(api)
    pairs = [
        (primary, peer)
        for primary in routers
        for peer in routers
        if primary.get("redundantstate") == "PRIMARY"
        and peer.get("redundantstate") == "BACKUP"
        and peer["state"] == "Running"
        and peer["guestnetworkid"] == primary["guestnetworkid"]
    ]
    primary, peer = pairs[0]
    api.rebootRouter(id=primary["id"])
    extra = {"projectid": -1} if "projectid" in peer else {}
    assert api.listRouters(id=peer["id"], listall=True, **extra)["router"][0]["redundantstate"] == "PRIMARY"


def test_it_replaces_routers_on_restart_network_with_cleanup(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim, poll_interval=0.1)
    router = api.listRouters(listall=True, forvpc=False, page=1, pagesize=1)["router"][0]
    assert api.restartNetwork(id=router["guestnetworkid"], cleanup=True, fetch_result=True) == {"success": True}
    fresh = api.listRouters(fetch_list=True, listall=True, networkid=router["guestnetworkid"])
    assert fresh and router["id"] not in {r["id"] for r in fresh} and {r["state"] for r in fresh} == {"Running"}
    assert router["linklocalip"] not in {r["linklocalip"] for r in fresh}


def test_the_client_sees_a_530_error_envelope(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("error530", count=1)
    assert api_error(client(cloudstack_sim).listZones)["errorcode"] == 530


def test_the_client_sees_a_proxy_502_page(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("bad_gateway", count=1)
    with pytest.raises(CloudStackException, match="HTTP 502"):
        client(cloudstack_sim).listZones()


def test_the_client_sees_a_proxy_503_page(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("unavailable", count=1)
    with pytest.raises(CloudStackException, match="HTTP 503"):
        client(cloudstack_sim).listZones()


def test_the_client_sees_malformed_json(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("malformed", count=1)
    with pytest.raises(CloudStackException, match="Malformed JSON"):
        client(cloudstack_sim).listRouters(listall=True)


def test_the_client_times_out_on_a_hang_longer_than_its_timeout(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("hang", count=1, seconds=3)
    with pytest.raises(requests.Timeout):
        client(cloudstack_sim, timeout=1).listZones()


def test_the_client_gets_an_answer_after_a_short_hang(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("hang", count=1, seconds=0.2)
    assert client(cloudstack_sim, timeout=5).listZones()["count"] == 4


def test_the_client_sees_a_revoked_key(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("unauthorized", count=1)
    assert api_error(client(cloudstack_sim).listZones)["errorcode"] == 401


def test_a_fault_for_one_command_spares_the_others(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("param_error", command="listHosts")
    api = client(cloudstack_sim)
    assert api.listZones()["count"] == 4
    assert api_error(api.listHosts)["errorcode"] == 431


def test_a_fault_lasts_for_its_count_only(cloudstack_sim: RunningSimulator) -> None:
    cloudstack_sim.fail("error530", count=2)
    api = client(cloudstack_sim)
    for _ in range(2):
        api_error(api.listZones)
    assert api.listZones()["count"] == 4


def test_the_control_endpoint_refuses_a_missing_token(cloudstack_sim: RunningSimulator) -> None:
    response = requests.post(cloudstack_sim.control_url, json={"action": "fail", "kind": "error530"}, timeout=5)
    assert response.status_code == 403 and cloudstack_sim.stats()["faults"] == []


def test_the_control_endpoint_sets_a_fault_with_the_token(cloudstack_sim: RunningSimulator) -> None:
    headers = {CONTROL_TOKEN_HEADER: cloudstack_sim.control_token}
    order = {"action": "fail", "kind": "error530", "count": 1}
    requests.post(cloudstack_sim.control_url, json=order, headers=headers, timeout=5).raise_for_status()
    assert api_error(client(cloudstack_sim).listZones)["errorcode"] == 530


def test_the_control_endpoint_reports_request_counts(cloudstack_sim: RunningSimulator) -> None:
    client(cloudstack_sim).listZones()
    headers = {CONTROL_TOKEN_HEADER: cloudstack_sim.control_token}
    stats = requests.get(cloudstack_sim.control_url, headers=headers, timeout=5).json()
    assert stats["requests"]["listZones"] == 1


def test_the_control_endpoint_changes_a_router_state(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    router = api.listRouters(listall=True, page=1, pagesize=1)["router"][0]
    headers = {CONTROL_TOKEN_HEADER: cloudstack_sim.control_token}
    order = {"action": "set_router", "id": router["name"], "state": "Error"}
    requests.post(cloudstack_sim.control_url, data=json.dumps(order), headers=headers, timeout=5).raise_for_status()
    assert api.listRouters(id=router["id"], listall=True)["router"][0]["state"] == "Error"


def test_removing_and_adding_routers_changes_the_listing(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    before = {r["id"] for r in api.listRouters(fetch_list=True, listall=True)}
    gone = sorted(before)[0]
    cloudstack_sim.remove_router(gone)
    added = cloudstack_sim.add_router()
    after = {r["id"] for r in api.listRouters(fetch_list=True, listall=True)}
    assert after == (before - {gone}) | {added["id"]}


def test_reset_brings_back_the_generated_fleet(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    before = all_routers(api)
    cloudstack_sim.remove_router(before[0]["id"])
    cloudstack_sim.reset_fleet()
    assert [r["id"] for r in all_routers(api)] == [r["id"] for r in before]


def test_it_serves_concurrent_keep_alive_requests(cloudstack_sim: RunningSimulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = client(cloudstack_sim)
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: api.listZones()["count"], range(32)))
    assert counts == [4] * 32


def test_it_has_no_health_check_api_before_414() -> None:
    with start_simulator(routers=10, version="4.13.1.0", prewarm=False) as sim:
        api = client(sim)
        router = api.listRouters(listall=True, fetchhealthcheckresults=True, page=1, pagesize=1)["router"][0]
        error = api_error(api.getRouterHealthCheckResults, routerid=router["id"])
    assert "healthcheckresults" not in router and "healthchecksfailed" not in router
    assert error["errorcode"] == 432


def test_it_hides_the_public_and_guest_network_fields_from_a_domain_admin(cloudstack_sim: RunningSimulator) -> None:
    api = CloudStack(
        endpoint=cloudstack_sim.url,
        key=cloudstack_sim.domain_admin_api_key,
        secret=cloudstack_sim.domain_admin_secret_key,
    )
    hidden = {
        "publicip",
        "publicmacaddress",
        "publicnetmask",
        "gateway",
        "publicnetworkid",
        "guestnetworkid",
        "guestnetworkname",
        "networkdomain",
    }
    routers = api.listRouters(fetch_list=True, listall=True)
    assert routers and not any(hidden & set(r) for r in routers)
