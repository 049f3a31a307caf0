"""`manage.py prune_history`: one retention pass now (a dry run that only counts unless --yes)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from diagnostics.retention import apply_retention


class Command(BaseCommand):
    help = "Apply the retention settings now: delete old history in batches (dry run without --yes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="really delete (without it, only count)")
        parser.add_argument("--json", action="store_true", help="end with one JSON object of the counts")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = not options["yes"]
        report = apply_retention(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for name, count in report.deleted.items():
            self.stdout.write(f"{verb} {count:>9} {name}")
        self.stdout.write(f"{'dry run' if dry_run else 'done'} in {report.duration_s} s")
        if options["json"]:
            self.stdout.write(
                json.dumps({"dry_run": dry_run, "deleted": report.deleted, "duration_s": report.duration_s})
            )
