"""Generated health history for the history tests: samples with known values, written in bulk.

Values come from a seeded random generator so every bucket has a real spread (and some
nulls, as when a probe failed); the tests compute what each bucket must hold by brute force
from the same list of values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from diagnostics.models import Collection, CollectionStatus, HealthSample
from diagnostics.series import METRIC_NAMES
from vrconsole.models import Router


@dataclass
class Generated:
    """The samples written, oldest first, as (time, values, per_nic, per_cpu)."""

    rows: list[tuple[datetime, dict[str, float | None], dict[str, list], dict[str, list]]]


def generate_samples(
    router: Router,
    start: datetime,
    count: int,
    step: timedelta,
    seed: int = 1,
    with_collections: bool = False,
    null_share: float = 0.1,
) -> Generated:
    """`count` samples of `router` every `step` from `start`, bulk-inserted; returns what was written."""
    rng = random.Random(seed)
    rows = []
    samples = []
    collections: list[Collection] = []
    if with_collections:
        collections = Collection.objects.bulk_create(
            Collection(
                router=router,
                status=CollectionStatus.SUCCEEDED,
                created=start + step * i,
                started=start + step * i,
                finished=start + step * i,
            )
            for i in range(count)
        )
    for i in range(count):
        at = start + step * i
        values: dict[str, float | None] = {}
        for name in METRIC_NAMES:
            if rng.random() < null_share:
                values[name] = None
            elif name.endswith(("_count", "_max", "_rules", "_leases", "_size")):
                values[name] = float(rng.randint(0, 100000))
            else:
                values[name] = round(rng.uniform(0, 100), 2)
        per_nic = {
            nic: [round(rng.uniform(0, 1e9), 1) if rng.random() > null_share else None for _ in range(6)]
            for nic in ("eth0", "eth1", "eth2")
            if not (nic == "eth2" and i % 7 == 0)  # an interface missing from some samples
        }
        per_cpu = {cpu: [round(rng.uniform(0, 100), 2), round(rng.uniform(0, 50), 3)] for cpu in ("cpu0", "cpu1")}
        rows.append((at, values, per_nic, per_cpu))
        samples.append(
            HealthSample(
                router=router,
                at=at,
                collection=collections[i] if with_collections else None,
                per_nic=per_nic,
                per_cpu=per_cpu,
                **{name: (int(v) if v is not None and _integer(name) else v) for name, v in values.items()},
            )
        )
    HealthSample.objects.bulk_create(samples, batch_size=2000)
    return Generated(rows)


def _integer(name: str) -> bool:
    from diagnostics.series import METRICS_BY_NAME

    return METRICS_BY_NAME[name].integer
