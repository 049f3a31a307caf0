"""The periodic jobs are declared once, on the right queues, at the configured intervals."""

from __future__ import annotations

import importlib

from rq import cron


def test_the_schedule_syncs_every_region_and_sweeps_the_fleet(settings) -> None:
    cron._job_data_registry.clear()
    import vrconsole.schedules

    importlib.reload(vrconsole.schedules)
    jobs = {entry["name"]: entry for entry in cron._job_data_registry}
    assert jobs["sync-all-regions"]["queue_name"] == "sync"
    assert jobs["sync-all-regions"]["interval"] == settings.SYNC_INTERVAL_SECONDS
    # The sweep only plans: on the default queue, never behind the previous sweep's batches.
    assert jobs["sweep-fleet"]["queue_name"] == "default"
    assert jobs["sweep-fleet"]["interval"] == settings.SWEEP_INTERVAL_SECONDS


def test_the_schedule_records_history_and_applies_retention_on_the_default_queue(settings) -> None:
    cron._job_data_registry.clear()
    import vrconsole.schedules

    importlib.reload(vrconsole.schedules)
    jobs = {entry["name"]: entry for entry in cron._job_data_registry}
    assert jobs["record-history"]["queue_name"] == "default"
    assert jobs["record-history"]["interval"] == settings.HISTORY_INTERVAL_SECONDS
    assert jobs["prune-history"]["queue_name"] == "default"
    assert jobs["prune-history"]["interval"] == settings.RETENTION_INTERVAL_SECONDS


def test_the_schedule_reads_the_record_of_failing_routers_on_the_actions_queue(settings) -> None:
    cron._job_data_registry.clear()
    import vrconsole.schedules

    importlib.reload(vrconsole.schedules)
    jobs = {entry["name"]: entry for entry in cron._job_data_registry}
    assert jobs["triage-failing-routers"]["queue_name"] == "actions"
    assert jobs["triage-failing-routers"]["interval"] == settings.SYNC_INTERVAL_SECONDS
