"""`python manage.py sync_routers [--region NAME] [--json]`: sync the inventory now.

Runs the same code as the scheduled job, in this process, and tells live fleet pages what
changed as the job does. With --json the last line of
output is one JSON object per region (the last region's on the last line); the exit status
is non-zero when any region's sync failed.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from vrconsole.cloudstack.regions import configured_regions, region_config
from vrconsole.jobs import publish_sync
from vrconsole.models import SyncRun, SyncStatus
from vrconsole.sync import sync_region


class Command(BaseCommand):
    help = "Sync routers, hosts, networks, VPCs and zones from the CloudStack API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--region", help="only this region (default: every configured region)")
        parser.add_argument("--json", action="store_true", help="end with one JSON object per region")
        parser.add_argument(
            "--allow-mass-removal",
            action="store_true",
            help="apply the answer even if it marks more than SYNC_MASS_REMOVAL_GUARD of the routers removed",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            regions = [region_config(options["region"])] if options["region"] else configured_regions()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if not regions:
            raise CommandError("no CloudStack region is configured: set CLOUDSTACK_URL (and keys) or CLOUDSTACK_CONFIG")
        failed = []
        for region in regions:
            result = sync_region(
                region, trigger=SyncRun.Trigger.COMMAND, allow_mass_removal=options["allow_mass_removal"]
            )
            publish_sync(result)
            if result.status != SyncStatus.OK:
                failed.append(region.name)
                self.stderr.write(f"{region.name}: sync FAILED after {result.duration_s:.1f} s: {result.error}")
            elif not options["json"]:
                self.stdout.write(
                    f"{region.name}: {result.routers} routers ({result.created} new, {result.updated} updated, "
                    f"{result.removed} removed, {result.state_changes} state changes) in {result.duration_s:.2f} s"
                )
            if result.warnings:
                self.stderr.write(f"{region.name}: warning: {result.warnings}")
            if options["json"]:
                self.stdout.write(json.dumps(result.as_json(), sort_keys=True))
        if failed:
            raise SystemExit(1)
