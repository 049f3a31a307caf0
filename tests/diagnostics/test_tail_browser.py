"""End to end: a live tail in Debian's chromium, against daphne, a real tail worker, Redis and the lab.

A lab of its own (base name `vrcw`, base block 69, shifted per run by tests/lab_slots.py); its
routers are written into the test database as a sync would write them, and one real
collection tells the console which logs the router has. Daphne and `manage.py tail_worker`
run as subprocesses against this run's database and Redis, as a deployment runs them. An
operator signs in through the login form, opens the router page and starts the tail; lines
are written on the router over SSH (the console's own SSH seam) and read in the page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from devcloud.lab.topology import LabPlan
from diagnostics.access import open_router_connection, plan_access
from diagnostics.collect import run_collection
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.models import Collection, CollectionStatus
from tests.chromium import chromium
from tests.diagnostics.lab_inventory import fresh_lab
from tests.diagnostics.test_live_browser import CHROMIUM, PASSWORD, ROOT, WAIT_MS, _database_url, running_server
from tests.diagnostics.test_tail_lab import inventory_router
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import Router
from vrconsole.roles import OPERATOR

pytestmark = [
    pytest.mark.lab,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]

LAB_NAME = lab_name("vrcw")
LAB_BLOCK = lab_block(69)


@pytest.fixture(scope="module")
def browser_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


@pytest.fixture
def known_hosts(tmp_path: Path, settings: Any) -> Path:
    # One file for this process, the server and the worker: the lab's host keys are pinned in the database.
    path = tmp_path / "known_hosts"
    settings.SSH_KNOWN_HOSTS_FILE = str(path)
    return path


@pytest.fixture
def tail_worker(known_hosts: Path, clean_tail_keys: None) -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py tail_worker` against this run's database and Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "tests.settings"),
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CHANNELS_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        "DATABASE_CONN_MAX_AGE": "0",
        "SSH_KNOWN_HOSTS_FILE": str(known_hosts),
        "TAIL_BACKFILL_LINES": "20",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "tail_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.fixture
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with running_server(django_db_blocker) as running:
        yield running.url


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def router(browser_lab: LabPlan, known_hosts: Path) -> Router:
    """A lab router the console has collected once (so it knows which logs the router has)."""
    router = inventory_router(browser_lab, "r-10-VM")
    collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    connection.close()
    return router


def over_ssh(router: Router, command: str) -> None:
    """Write on the router through the console's SSH seam, as an engineer on the router would."""
    with open_router_connection(plan_access(router), PinnedHostKeys()) as opened:
        result = opened.router.run(command, timeout=10)
    assert result.exit_status == 0, result.stderr


def rows_with(tab: Any, text: str) -> int:
    return tab.evaluate(
        "text => Array.from(document.querySelectorAll('[data-tail-pane] .tail-line .tail-text'))"
        ".filter(cell => cell.textContent === text).length",
        text,
    )


def wait_for_row(tab: Any, text: str) -> None:
    tab.wait_for_function(
        "text => Array.from(document.querySelectorAll('[data-tail-pane] .tail-line .tail-text'))"
        ".some(cell => cell.textContent.includes(text))",
        arg=text,
    )


def test_an_operator_follows_a_router_log_live_through_pause_truncation_and_hostile_lines(
    router, tail_worker, server, browser
):
    operator = get_user_model().objects.create_user("oncall", password=PASSWORD)
    operator.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    connection.close()
    tab = browser.new_context().new_page()
    tab.set_default_timeout(3 * WAIT_MS)
    tab.goto(f"{server}/login/")
    tab.fill("input[name=username]", "oncall")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{server}/")
    tab.goto(f"{server}/routers/{router.uuid}/")
    tab.evaluate("window.notReloaded = true")

    # Open the tail of cloud.log: it starts with the log's last lines.
    tab.select_option("[data-tail-log]", "cloud")
    tab.click("[data-tail-start]")
    tab.wait_for_selector('#live-tail[data-tail-status="streaming"]')
    wait_for_row(tab, "following /var/log/cloud.log from its last 20 lines")
    assert "● live" in tab.inner_text("[data-tail-statuses]")

    # A line appended on the router appears.
    over_ssh(router, "echo 'e2e: appended on the router' >> /var/log/cloud.log")
    wait_for_row(tab, "e2e: appended on the router")

    # Paused: what arrives is counted, not shown; resumed: all of it, once, in order.
    tab.click("[data-tail-follow]")
    over_ssh(
        router, "echo 'e2e: while paused 1' >> /var/log/cloud.log; echo 'e2e: while paused 2' >> /var/log/cloud.log"
    )
    tab.wait_for_function("() => document.querySelector('[data-tail-paused]').textContent.includes('2 new lines')")
    assert rows_with(tab, "e2e: while paused 1") == 0
    tab.click("[data-tail-follow]")
    wait_for_row(tab, "e2e: while paused 2")
    texts = tab.eval_on_selector_all("[data-tail-pane] .tail-text", "cells => cells.map(cell => cell.textContent)")
    assert texts.index("e2e: while paused 1") < texts.index("e2e: while paused 2")
    assert rows_with(tab, "e2e: while paused 1") == 1 and rows_with(tab, "e2e: while paused 2") == 1

    # The VR's logrotate copies and truncates: the tail says so and keeps following.
    over_ssh(
        router,
        "cp /var/log/cloud.log /var/log/cloud.log.1 && : > /var/log/cloud.log && sleep 1 && "
        "echo 'e2e: after copytruncate' >> /var/log/cloud.log",
    )
    wait_for_row(tab, "e2e: after copytruncate")
    wait_for_row(tab, "file truncated")

    # Markup and terminal escapes in a log line are text.
    over_ssh(
        router,
        "printf '%s \\033[31mred\\033[0m ERROR done\\n' '<script>window.pwned = 1</script><b>bold</b>' >> /var/log/cloud.log",
    )
    hostile = "<script>window.pwned = 1</script><b>bold</b> \\x1b[31mred\\x1b[0m ERROR done"
    wait_for_row(tab, hostile)
    assert tab.evaluate("window.pwned") is None
    assert tab.query_selector("[data-tail-pane] script, [data-tail-pane] b") is None
    row_class = tab.evaluate(
        "text => Array.from(document.querySelectorAll('[data-tail-pane] .tail-text'))"
        ".find(cell => cell.textContent === text).parentNode.className",
        hostile,
    )
    assert "sev-crit" in row_class  # "ERROR": highlighted, with its ▲ in the gutter

    # The filter hides what does not match, and says how many lines do; the rate is shown.
    tab.fill("[data-tail-filter]", "e2e: while paused")
    tab.wait_for_function("() => document.querySelector('[data-tail-count]').textContent.startsWith('2 of ')")
    visible = tab.eval_on_selector_all(
        "[data-tail-pane] .tail-line:not([hidden]) .tail-text", "cells => cells.map(cell => cell.textContent)"
    )
    assert [text for text in visible if text.startswith("e2e")] == ["e2e: while paused 1", "e2e: while paused 2"]
    assert tab.inner_text("[data-tail-rate]").endswith("lines/s")

    # Download saves what is shown: the filtered lines.
    with tab.expect_download() as download:
        tab.click("[data-tail-download]")
    saved = Path(download.value.path()).read_text()
    assert "e2e: while paused 1\ne2e: while paused 2\n" in saved and "e2e: appended on the router" not in saved
    assert download.value.suggested_filename.startswith("r-10-VM_cloud_")

    # Nothing was reloaded, and every line came once.
    assert tab.evaluate("window.notReloaded") is True
    tab.fill("[data-tail-filter]", "")
    assert rows_with(tab, "e2e: appended on the router") == 1
    time.sleep(0.5)
    tab.click("[data-tail-stop]")
    assert "closed" in tab.inner_text("[data-tail-statuses]")


def redundant_pair(plan: LabPlan) -> tuple[Router, Router]:
    """The lab's redundant pair as the sync writes it: one network, PRIMARY and BACKUP."""
    from vrconsole.models import Network

    first, second = inventory_router(plan, "r-13-VM"), inventory_router(plan, "r-14-VM")
    network = Network.objects.create(region=first.region, zone=first.zone, uuid=f"{plan.name}-pair", name="pair-net")
    Router.objects.filter(pk=first.pk).update(is_redundant=True, redundant_state="PRIMARY", network=network)
    Router.objects.filter(pk=second.pk).update(is_redundant=True, redundant_state="BACKUP", network=network)
    return Router.objects.get(pk=first.pk), Router.objects.get(pk=second.pk)


def test_both_members_of_a_pair_side_by_side_on_one_time_axis(browser_lab, known_hosts, tail_worker, server, browser):
    from datetime import UTC, datetime, timedelta

    primary, backup = redundant_pair(browser_lab)
    for member in (primary, backup):
        collection = run_collection(Collection.objects.create(router=member), publish=lambda *_: None)
        assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    operator = get_user_model().objects.create_user("oncall", password=PASSWORD)
    operator.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    connection.close()
    tab = browser.new_context().new_page()
    tab.set_default_timeout(3 * WAIT_MS)
    tab.goto(f"{server}/login/")
    tab.fill("input[name=username]", "oncall")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{server}/")
    tab.goto(f"{server}/routers/{primary.uuid}/")
    tab.select_option("[data-tail-log]", "daemon")
    tab.check("[data-tail-pair]")
    tab.click("[data-tail-start]")
    tab.wait_for_selector('#live-tail[data-tail-status="streaming streaming"]')
    assert "r-14-VM (BACKUP)" in tab.inner_text("[data-tail-columns]")

    # A flap told by both logs, written out of order: the page lays it out by the lines' own times.
    start = datetime.now(UTC) + timedelta(hours=1)

    def syslog(router: Router, seconds: int, state: str) -> str:
        stamp = (start + timedelta(seconds=seconds)).strftime("%b %e %H:%M:%S")
        return f"{stamp} {router.name} Keepalived_vrrp[77]: (inside_network) Entering {state} STATE"

    story = [(primary, 3, "BACKUP"), (backup, 2, "MASTER"), (primary, 1, "FAULT")]
    for member, seconds, state in story:
        over_ssh(member, f"echo '{syslog(member, seconds, state)}' >> /var/log/daemon.log")
    for member, seconds, state in story:
        wait_for_row(tab, syslog(member, seconds, state))
    rows = tab.eval_on_selector_all(
        "[data-tail-pane] .tail-line",
        "rows => rows.map(row => Array.from(row.querySelectorAll('.tail-text')).map(cell => cell.textContent))",
    )
    written = {syslog(member, seconds, state) for member, seconds, state in story}
    flap = [cells for cells in rows if written & set(cells)]
    assert flap == [
        [syslog(primary, 1, "FAULT"), ""],
        ["", syslog(backup, 2, "MASTER")],
        [syslog(primary, 3, "BACKUP"), ""],
    ]
