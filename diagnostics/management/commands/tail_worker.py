"""`python manage.py tail_worker`: the process that holds live tails (many per process).

Run one or more next to the RQ workers; each takes the tails viewers ask for, up to
--max-tails (TAIL_MAX_PER_WORKER) at once, and gives them up on SIGTERM or Ctrl-C (another
worker then takes them over). Tails are not RQ jobs: a tail lives as long as someone watches
it, and must never hold a collection worker.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from diagnostics.tails.store import TailStore
from diagnostics.tails.worker import TailWorker, worker_host


async def _worker_alive_here() -> bool:
    return await TailStore().live_workers(host=worker_host()) > 0


class Command(BaseCommand):
    help = "Run the live-tail worker: follows router logs over SSH for the viewers who asked."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-tails", type=int, default=None, help="tails held at once (default: TAIL_MAX_PER_WORKER)"
        )
        parser.add_argument(
            "--check-health",
            action="store_true",
            help="exit 0 when a tail worker of this machine reported in the last few seconds (container health check)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check_health"]:
            alive = asyncio.run(_worker_alive_here())
            self.stdout.write("tail worker alive" if alive else "no live tail worker on this machine")
            raise SystemExit(0 if alive else 1)
        if options["max_tails"] is not None and options["max_tails"] < 1:
            self.stderr.write("--max-tails must be at least 1")
            raise SystemExit(2)
        worker = TailWorker(max_tails=options["max_tails"])
        self.stdout.write(f"tail worker {worker.worker_id}: at most {worker.max_tails} tails; Ctrl-C stops it")
        asyncio.run(self._serve(worker))
        self.stdout.write("tail worker stopped")

    async def _serve(self, worker: TailWorker) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)
