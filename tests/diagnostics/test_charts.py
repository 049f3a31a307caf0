"""Chart builders as data: traces, bands, thresholds and markers, without a browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from diagnostics.charts import (
    build_conntrack_figure,
    build_disk_figure,
    build_interface_figure,
    build_router_figures,
    build_sparkline,
    marker_trace,
)
from diagnostics.history import History, Marker, Stat, TimeRange
from diagnostics.series import METRIC_NAMES, NIC_FIELDS

START = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
THRESHOLDS = {
    "conntrack_warning_pct": 75.0,
    "conntrack_critical_pct": 90.0,
    "disk_warning_pct": 85.0,
    "disk_critical_pct": 95.0,
}


def history(markers: list[Marker] | None = None, count: int = 4) -> History:
    metrics = {name: Stat.empty(count) for name in METRIC_NAMES}
    metrics["conntrack_count"] = Stat(
        [100.0, 200.0, None, 400.0], [150.0, 250.0, None, 450.0], [190.0, 900.0, None, 500.0]
    )
    metrics["conntrack_max"] = Stat([1000.0] * 4, [1000.0] * 4, [1000.0, 1000.0, None, 2000.0])
    metrics["disk_log_percent"] = Stat([50.0, 60.0, 70.0, 80.0], [55.0, 65.0, 75.0, 85.0], [59.0, 69.0, 79.0, 97.5])
    nic = {field: Stat([1.0] * count, [2.0] * count, [3.0] * count) for field in NIC_FIELDS}
    nic["rx_errors_ps"] = Stat([0.0] * count, [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 2.0, 0.0])
    nic["tx_errors_ps"] = Stat([0.0] * count, [0.0] * count, [0.0] * count)
    return History(
        range=TimeRange(START, START + timedelta(hours=4), "custom", 3600),
        first_bucket=int(START.timestamp() // 3600),
        count=count,
        width=3600,
        source="raw",
        metrics=metrics,
        samples=[1, 12, 0, 12],
        collections=[41, None, None, None],
        keyed={"per_nic": {"eth0": nic}, "per_cpu": {}},
        markers=markers or [],
    )


def trace_named(figure: dict, name: str) -> dict:
    return next(trace for trace in figure["data"] if trace.get("name") == name)


def test_the_conntrack_figure_draws_a_band_from_min_to_max_around_the_average() -> None:
    figure = build_conntrack_figure(history(), THRESHOLDS)
    assert trace_named(figure, "entries max")["y"] == [190, 900, None, 500]
    low = trace_named(figure, "entries min")
    assert low["y"] == [100, 200, None, 400] and low["fill"] == "tonexty"
    assert trace_named(figure, "entries")["y"] == [150, 250, None, 450]


def test_the_conntrack_figure_draws_its_maximum_and_the_warning_and_critical_levels() -> None:
    figure = build_conntrack_figure(history(), THRESHOLDS)
    assert trace_named(figure, "nf_conntrack_max")["y"] == [1000, 1000, None, 2000]
    assert trace_named(figure, "warning 75 %")["y"] == [750, 750, None, 1500]
    assert trace_named(figure, "critical 90 %")["y"] == [900, 900, None, 1800]


def test_buckets_are_evenly_spaced_so_traces_carry_x0_and_dx_not_a_time_array() -> None:
    trace = trace_named(build_conntrack_figure(history(), THRESHOLDS), "entries")
    assert trace["x0"] == "2026-03-10T00:00:00Z" and trace["dx"] == 3_600_000
    assert "x" not in trace


def test_a_single_sample_bucket_names_its_collection_for_hover_and_click() -> None:
    trace = trace_named(build_conntrack_figure(history(), THRESHOLDS), "entries")
    assert trace["customdata"] == [41, None, None, None]
    assert "collection #%{customdata}" in trace["hovertemplate"]


def test_disk_thresholds_are_dashed_lines_and_the_bucket_maximum_is_drawn() -> None:
    figure = build_disk_figure(history(), THRESHOLDS)
    assert trace_named(figure, "/var/log space")["y"] == [59, 69, 79, 97.5]
    levels = sorted(shape["y0"] for shape in figure["layout"]["shapes"] if shape["type"] == "line")
    assert levels == [85.0, 95.0]


def test_markers_show_findings_and_state_changes_and_link_to_their_collection() -> None:
    markers = [
        Marker(START + timedelta(minutes=10), "finding-opened", "dnsmasq-not-running opened", "critical", 41),
        Marker(START + timedelta(hours=2), "finding-resolved", "dnsmasq-not-running resolved", "critical", 52),
        Marker(START + timedelta(hours=3), "state", "state: Running → Stopped"),
    ]
    trace = marker_trace(markers)
    assert trace is not None
    assert trace["customdata"] == ["/collections/41/", "/collections/52/", None]
    assert trace["marker"]["symbol"] == ["triangle-up", "circle", "diamond"]
    assert trace["text"][0].startswith("▲ opened: dnsmasq-not-running")


def test_an_open_finding_is_a_shaded_band_on_every_figure_until_it_resolves() -> None:
    markers = [
        Marker(START + timedelta(minutes=10), "finding-opened", "disk-full opened", "warning", 41),
        Marker(START + timedelta(hours=2), "finding-resolved", "disk-full resolved", "warning", 52),
    ]
    for item in build_router_figures(history(markers), THRESHOLDS):
        rects = [shape for shape in item["figure"]["layout"]["shapes"] if shape["type"] == "rect"]
        assert [(r["x0"], r["x1"]) for r in rects] == [("2026-03-10T00:10:00Z", "2026-03-10T02:00:00Z")], item["id"]


def test_each_interface_gets_its_own_figure_with_rates_and_its_errors() -> None:
    figures = {item["id"]: item["figure"] for item in build_router_figures(history(), THRESHOLDS)}
    assert {"conntrack", "cpu", "softirq", "memory", "disk", "dhcp", "iptables", "nic-eth0"} <= set(figures)
    figure = build_interface_figure(history(), "eth0")
    assert trace_named(figure, "rx bit/s")["y"] == [2, 2, 2, 2]
    assert trace_named(figure, "rx errors/s")["yaxis"] == "y2"
    # An error counter that never moved is left out rather than drawn flat at zero.
    assert "tx errors/s" not in {trace["name"] for trace in figure["data"]}


def test_a_sparkline_leaves_a_gap_where_there_is_no_value() -> None:
    path = build_sparkline([1.0, 2.0, None, 3.0], width=30, height=10)
    assert path.count("M") == 2 and path.startswith("M0.0,9.0")
    assert build_sparkline([None, None]) == ""
