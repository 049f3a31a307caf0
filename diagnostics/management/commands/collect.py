"""`python manage.py collect ROUTER [--json]`: collect one router now, in this process.

ROUTER is a router name (`r-123-VM`) or uuid. It runs the same code as the `collect_router`
job, without a worker, records the Collection like any other, and prints the facts. With
--json the last line of output is one JSON object (router, collection outcome, facts). The
exit status is non-zero when the collection did not succeed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from diagnostics.jobs import collect_and_evaluate
from diagnostics.models import Collection, CollectionStatus, CollectionTrigger
from vrconsole.models import Router


def find_router(text: str) -> Router:
    """The present router with this name or uuid (a removed one if no present one matches)."""
    matches = list(Router.objects.filter(Q(name=text) | Q(uuid=text)).order_by("removed_at", "-api_changed_at")[:5])
    present = [r for r in matches if r.removed_at is None]
    candidates = present or matches
    if not candidates:
        raise CommandError(f"no router named or with uuid {text!r}")
    if len(present) > 1:
        raise CommandError(f"{text!r} names {len(present)} routers in different regions; give its uuid")
    return candidates[0]


def collection_summary(collection: Collection) -> dict[str, Any]:
    """The collection's outcome as the --json output reports it."""
    return {
        "id": collection.pk,
        "status": collection.status,
        "reason": collection.reason,
        "error": collection.error,
        "access_path": collection.access_path,
        "duration_s": collection.duration_s,
        "probes": {
            result.name: {"ok": result.ok, "duration_s": result.duration_s, "error": result.error}
            for result in collection.probe_results.order_by("id")
        },
    }


class Command(BaseCommand):
    help = "Collect one router now (no worker needed) and print its facts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router name (r-123-VM) or uuid")
        parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")

    def handle(self, *args: Any, **options: Any) -> None:
        router = find_router(options["router"])
        collection = Collection.objects.create(router=router, trigger=CollectionTrigger.COMMAND)
        try:
            collect_and_evaluate(collection)
        except Exception as exc:  # recorded on the row as errored, with its traceback
            self.stderr.write(f"collection {collection.pk} errored: {type(exc).__name__}: {exc}")
        collection.refresh_from_db()
        summary = collection_summary(collection)
        if options["json"]:
            payload = {
                "router": {"id": router.pk, "name": router.name, "uuid": router.uuid},
                "collection": summary,
                "facts": collection.facts,
            }
            self.stdout.write(json.dumps(payload, sort_keys=True, default=str))
        else:
            self._print_readably(router, summary, collection.facts)
        if collection.status != CollectionStatus.SUCCEEDED:
            sys.exit(1)

    def _print_readably(self, router: Router, summary: dict[str, Any], facts: dict[str, Any]) -> None:
        self.stdout.write(f"{router.name} ({router.uuid}) {summary['access_path']}")
        line = f"collection {summary['status']} in {summary['duration_s']}s"
        if summary["reason"] or summary["error"]:
            line += f": {summary['reason']} {summary['error']}".rstrip()
        self.stdout.write(line)
        for name, probe in summary["probes"].items():
            mark = "ok " if probe["ok"] else "ERR"
            self.stdout.write(f"  {mark} {name:<24} {probe['duration_s']}s {probe['error']}".rstrip())
        for name, value in facts.items():
            self.stdout.write(f"\n== {name}")
            self.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str))
