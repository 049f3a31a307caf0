"""Chart builders: pure functions from a router's downsampled history to plotly figures (dicts).

Each `build_*_figure(history, ...)` returns a plotly figure as plain JSON-ready data
(`{"data": [...], "layout": {...}}`) that tests read without a browser and one small script
(static/js/charts.js) draws. Buckets are evenly spaced, so traces carry `x0`/`dx` instead of
repeating the time axis; empty buckets are nulls (a gap, never an invented zero). Series
that have a spread draw it as a band from the bucket minimum to the maximum around the
average, so peaks survive any range. Findings opening and resolving and state changes are
markers (clickable: they open their collection) and shaded bands, on every figure's time
axis. Colours of the page (background, text, grid) are the script's: the figures follow the
dark and light themes without being rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagnostics.history import History, Marker, Stat

Figure = dict[str, Any]

# One palette for series, readable on the dark and the light background.
PALETTE = ("#4e9bff", "#f28e2b", "#59b36b", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f")
WARN_COLOR = "#e8a317"
CRIT_COLOR = "#e0424b"
OK_COLOR = "#2fb464"
INFO_COLOR = "#4e9bff"
MARKER_LOOK: dict[str, tuple[str, str]] = {
    # kind -> (symbol, label prefix)
    "finding-opened": ("triangle-up", "▲ opened"),
    "finding-reopened": ("triangle-up-open", "↻ reopened"),
    "finding-resolved": ("circle", "● resolved"),
    "state": ("diamond", "◆ state"),
}
SEVERITY_COLORS = {"critical": CRIT_COLOR, "warning": WARN_COLOR, "info": INFO_COLOR}
MAX_BANDS = 60


def _value(value: float | None) -> float | int | None:
    """A number as short as it can travel: two decimals, integers without a point."""
    if value is None:
        return None
    rounded = round(value, 2)
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def _values(values: Sequence[float | None], scale: float = 1.0) -> list[float | int | None]:
    return [_value(v * scale if v is not None else None) for v in values]


def _axis_x(history: History) -> dict[str, Any]:
    return {"x0": history.bucket_start(0).isoformat().replace("+00:00", "Z"), "dx": history.width * 1000}


def _line(history: History, values: Sequence[float | None], name: str, color: str, **extra: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "y": _values(values),
        "line": {"color": color, "width": 1.6},
        "connectgaps": False,
        **_axis_x(history),
    }
    trace.update(extra)
    return trace


def _band(history: History, stat: Stat, name: str, color: str, unit: str, **extra: Any) -> list[dict[str, Any]]:
    """Maximum, minimum (filled up to the maximum) and average of one series."""
    fill = _translucent(color, 0.18)
    peak = _line(
        history, stat.maxs, f"{name} max", color, line={"width": 0}, showlegend=False, hovertemplate=f"max %{{y}}{unit}"
    )
    low = _line(
        history,
        stat.mins,
        f"{name} min",
        color,
        line={"width": 0},
        fill="tonexty",
        fillcolor=fill,
        showlegend=False,
        hovertemplate=f"min %{{y}}{unit}",
    )
    average = _line(history, stat.avgs, name, color, hovertemplate=f"avg %{{y}}{unit}", **extra)
    for trace in (peak, low):
        trace.update({key: value for key, value in extra.items() if key == "yaxis"})
    return [peak, low, average]


def _translucent(color: str, alpha: float) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _with_collections(trace: dict[str, Any], history: History) -> dict[str, Any]:
    """Attach each bucket's collection (when the bucket is one sample) for hover and click."""
    if any(history.collections):
        trace["customdata"] = history.collections
        trace["hovertemplate"] = trace.get("hovertemplate", "%{y}") + "<br>collection #%{customdata}"
    return trace


def _layout(title: str, y_title: str, history: History, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
        "xaxis": {
            "type": "date",
            "range": [_iso(history.range.start), _iso(history.range.end)],
            "showspikes": True,
            "spikemode": "across",
            "spikethickness": 1,
        },
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "automargin": True},
        "yaxis9": {"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        "hovermode": "x unified",
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.18},
        "margin": {"l": 60, "r": 60, "t": 36, "b": 40},
        "height": 300,
        "shapes": [],
    }
    layout.update(extra)
    return layout


def _iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def marker_trace(markers: Sequence[Marker]) -> dict[str, Any] | None:
    """The findings and state changes as clickable points along the top of the plot."""
    if not markers:
        return None
    colors, symbols, texts, links = [], [], [], []
    for marker in markers:
        symbol, prefix = MARKER_LOOK.get(marker.kind, ("x", marker.kind))
        if marker.kind == "finding-resolved":
            colors.append(OK_COLOR)
        elif marker.kind == "state":
            colors.append(INFO_COLOR)
        else:
            colors.append(SEVERITY_COLORS.get(marker.severity, WARN_COLOR))
        symbols.append(symbol)
        texts.append(f"{prefix}: {marker.label}"[:300])
        links.append(f"/collections/{marker.collection_id}/" if marker.collection_id else None)
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "findings and state changes",
        "x": [_iso(marker.at) for marker in markers],
        "y": [0.96] * len(markers),
        "yaxis": "y9",
        "text": texts,
        "customdata": links,
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {"color": colors, "symbol": symbols, "size": 11, "line": {"width": 1, "color": "#000"}},
        "showlegend": False,
    }


def finding_bands(history: History) -> list[dict[str, Any]]:
    """Shaded spans of the time axis while a finding was open (from the markers of the range)."""
    opened: dict[str, Marker] = {}
    spans: list[tuple[Any, Any, str]] = []
    start, end = history.range.start, history.range.end
    for marker in history.markers:
        if not marker.kind.startswith("finding-"):
            continue
        rule = marker.label.split(" ", 1)[0]
        if marker.kind == "finding-resolved":
            began = opened.pop(rule, None)
            spans.append((began.at if began else start, marker.at, began.severity if began else marker.severity))
        else:
            opened.setdefault(rule, marker)
    spans += [(marker.at, end, marker.severity) for marker in opened.values()]
    return [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": _iso(left),
            "x1": _iso(right),
            "y0": 0,
            "y1": 1,
            "fillcolor": _translucent(SEVERITY_COLORS.get(severity, WARN_COLOR), 0.08),
            "line": {"width": 0},
            "layer": "below",
        }
        for left, right, severity in spans[-MAX_BANDS:]
    ]


def _threshold(value: float, color: str, label: str) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": value,
        "y1": value,
        "line": {"color": color, "width": 1, "dash": "dash"},
        "label": {"text": label, "textposition": "end", "font": {"size": 10, "color": color}},
    }


def _figure(history: History, traces: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
    markers = marker_trace(history.markers)
    layout["shapes"] = finding_bands(history) + layout.get("shapes", [])
    return {"data": traces + ([markers] if markers else []), "layout": layout}


def build_conntrack_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """conntrack entries (band) against nf_conntrack_max, with the warning and critical levels."""
    count, maximum = history.metrics["conntrack_count"], history.metrics["conntrack_max"]
    traces = _band(history, count, "entries", PALETTE[0], "")
    _with_collections(traces[-1], history)
    traces.append(_line(history, maximum.maxs, "nf_conntrack_max", "#8d97a3", line={"color": "#8d97a3", "dash": "dot"}))
    for name, color in (("conntrack_warning_pct", WARN_COLOR), ("conntrack_critical_pct", CRIT_COLOR)):
        percent = thresholds.get(name)
        if percent is None:
            continue
        level = [m * percent / 100 if m is not None else None for m in maximum.maxs]
        label = f"{'warning' if 'warning' in name else 'critical'} {percent:g} %"
        traces.append(_line(history, level, label, color, line={"color": color, "width": 1, "dash": "dash"}))
    return _figure(history, traces, _layout("conntrack table", "entries", history))


def build_cpu_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """CPU busy (band) and softirq share in %, load average on a second axis."""
    traces = _band(history, history.metrics["cpu_percent"], "CPU busy", PALETTE[0], " %")
    _with_collections(traces[-1], history)
    traces.append(
        _line(history, history.metrics["softirq_percent"].avgs, "softirq", PALETTE[1], hovertemplate="%{y} %")
    )
    traces.append(_line(history, history.metrics["load1"].avgs, "load (1 min)", PALETTE[2], yaxis="y2"))
    shapes = []
    if "cpu_busy_warning_pct" in thresholds:
        shapes.append(_threshold(thresholds["cpu_busy_warning_pct"], WARN_COLOR, "busy warning"))
    layout = _layout(
        "CPU and load",
        "%",
        history,
        yaxis2={"title": {"text": "load"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
        shapes=shapes,
    )
    layout["yaxis"]["range"] = [0, 100]
    return _figure(history, traces, layout)


def build_softirq_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """softirq share per CPU, and softnet backlog drops per CPU per second on a second axis."""
    per_cpu = history.keyed.get("per_cpu", {})
    traces = []
    for index, (cpu, stats) in enumerate(sorted(per_cpu.items(), key=lambda item: _natural(item[0]))):
        color = PALETTE[index % len(PALETTE)]
        traces.append(
            _line(history, stats["softirq_percent"].maxs, f"{cpu} softirq (max)", color, hovertemplate="%{y} %")
        )
        if stats["softnet_drops_ps"].has_values():
            traces.append(
                _line(
                    history,
                    stats["softnet_drops_ps"].maxs,
                    f"{cpu} softnet drops/s",
                    color,
                    yaxis="y2",
                    line={"color": color, "width": 1, "dash": "dot"},
                )
            )
    shapes = []
    if "softirq_cpu_warning_pct" in thresholds:
        shapes.append(_threshold(thresholds["softirq_cpu_warning_pct"], WARN_COLOR, "per-CPU warning"))
    layout = _layout(
        "softirq per CPU",
        "% of the CPU",
        history,
        yaxis2={"title": {"text": "drops/s"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
        shapes=shapes,
    )
    return _figure(history, traces, layout)


def build_memory_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """Memory used (band), with the warning and critical levels."""
    traces = _band(history, history.metrics["memory_percent"], "memory used", PALETTE[4], " %")
    _with_collections(traces[-1], history)
    shapes = [
        _threshold(thresholds[name], color, label)
        for name, color, label in (
            ("memory_warning_pct", WARN_COLOR, "warning"),
            ("memory_critical_pct", CRIT_COLOR, "critical"),
        )
        if name in thresholds
    ]
    layout = _layout("memory", "% used", history, shapes=shapes)
    layout["yaxis"]["range"] = [0, 100]
    return _figure(history, traces, layout)


def build_disk_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """Space and inode use of / and /var/log (bucket maxima: a filling disk shows its worst)."""
    traces = []
    for index, (name, label) in enumerate(
        (
            ("disk_root_percent", "/ space"),
            ("disk_log_percent", "/var/log space"),
            ("inode_root_percent", "/ inodes"),
            ("inode_log_percent", "/var/log inodes"),
        )
    ):
        dash = "dot" if "inode" in name else "solid"
        color = PALETTE[index % 2]
        traces.append(
            _line(
                history,
                history.metrics[name].maxs,
                label,
                color,
                line={"color": color, "width": 1.6, "dash": dash},
                hovertemplate="%{y} %",
            )
        )
    if traces:
        _with_collections(traces[0], history)
    shapes = [
        _threshold(thresholds[name], color, label)
        for name, color, label in (
            ("disk_warning_pct", WARN_COLOR, "warning"),
            ("disk_critical_pct", CRIT_COLOR, "critical"),
        )
        if name in thresholds
    ]
    layout = _layout("disk and inodes", "% used", history, shapes=shapes)
    layout["yaxis"]["range"] = [0, 100]
    return _figure(history, traces, layout)


def build_dhcp_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """DHCP leases against the size of the DHCP range."""
    leases = history.metrics["dhcp_leases"]
    traces = _band(history, leases, "leases", PALETTE[2], "")
    _with_collections(traces[-1], history)
    traces.append(
        _line(
            history,
            history.metrics["dhcp_range_size"].maxs,
            "range size",
            "#8d97a3",
            line={"color": "#8d97a3", "dash": "dot"},
        )
    )
    return _figure(history, traces, _layout("DHCP leases", "leases", history))


def build_iptables_figure(history: History, thresholds: Mapping[str, float]) -> Figure:
    """iptables rule counts per table (bucket maxima)."""
    traces = [
        _line(history, history.metrics[name].maxs, label, PALETTE[index])
        for index, (name, label) in enumerate(
            (("filter_rules", "filter"), ("nat_rules", "nat"), ("mangle_rules", "mangle"))
        )
    ]
    _with_collections(traces[0], history)
    return _figure(history, traces, _layout("iptables rules", "rules", history))


def build_interface_figure(history: History, nic: str) -> Figure:
    """One interface: receive and transmit rates (average and peak), errors and drops per second."""
    stats = history.keyed.get("per_nic", {}).get(nic, {})
    traces = []
    for index, (field, label) in enumerate((("rx_bps", "rx"), ("tx_bps", "tx"))):
        if field not in stats:
            continue
        color = PALETTE[index]
        traces.append(_line(history, stats[field].avgs, f"{label} bit/s", color, hovertemplate="%{y:.3s}bit/s"))
        traces.append(
            _line(
                history,
                stats[field].maxs,
                f"{label} peak",
                color,
                line={"color": color, "width": 1, "dash": "dot"},
                hovertemplate="peak %{y:.3s}bit/s",
            )
        )
    for index, (field, label) in enumerate(
        (
            ("rx_errors_ps", "rx errors/s"),
            ("tx_errors_ps", "tx errors/s"),
            ("rx_drops_ps", "rx drops/s"),
            ("tx_drops_ps", "tx drops/s"),
        )
    ):
        if field in stats and stats[field].has_values() and any(v for v in stats[field].maxs):
            color = (CRIT_COLOR, CRIT_COLOR, WARN_COLOR, WARN_COLOR)[index]
            traces.append(
                _line(history, stats[field].maxs, label, color, yaxis="y2", line={"color": color, "width": 1})
            )
    layout = _layout(
        f"interface {nic}",
        "bit/s",
        history,
        yaxis2={"title": {"text": "errors, drops /s"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return _figure(history, traces, layout)


def _natural(name: str) -> tuple[str, int]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1)


FIXED_BUILDERS = (
    ("conntrack", build_conntrack_figure),
    ("cpu", build_cpu_figure),
    ("softirq", build_softirq_figure),
    ("memory", build_memory_figure),
    ("disk", build_disk_figure),
    ("dhcp", build_dhcp_figure),
    ("iptables", build_iptables_figure),
)


def build_router_figures(history: History, thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """Every figure of the router page, in page order, each as {"id", "figure"}."""
    figures = [{"id": name, "figure": build(history, thresholds)} for name, build in FIXED_BUILDERS]
    for nic in sorted(history.keyed.get("per_nic", {}), key=_natural):
        figures.append({"id": f"nic-{nic}", "figure": build_interface_figure(history, nic)})
    return figures


def build_fleet_lines_figure(
    title: str,
    y_title: str,
    first: Any,
    width: int,
    series: Mapping[str, Sequence[float | None]],
    colors: Mapping[str, str],
) -> Figure:
    """Stacked counts over time (routers per status, open findings per category)."""
    traces = []
    for index, (name, values) in enumerate(series.items()):
        color = colors.get(name, PALETTE[index % len(PALETTE)])
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "stackgroup": "one",
                "name": name,
                "y": _values(values),
                "x0": _iso(first),
                "dx": width * 1000,
                "line": {"color": color, "width": 1},
                "fillcolor": _translucent(color, 0.45) if color.startswith("#") else color,
            }
        )
    layout = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"l": 60, "r": 20, "t": 36, "b": 40},
        "height": 300,
    }
    return {"data": traces, "layout": layout}


def build_sparkline(values: Sequence[float | None], width: int = 120, height: int = 24) -> str:
    """An SVG path (`M x,y L ...`) of the values scaled into width × height; gaps start a new stroke."""
    numbers = [v for v in values if v is not None]
    if not numbers:
        return ""
    low, high = min(numbers), max(numbers)
    spread = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    parts, pen_down = [], False
    for index, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = round(index * step, 1)
        y = round(height - 1 - (value - low) / spread * (height - 2), 1)
        parts.append(f"{'L' if pen_down else 'M'}{x},{y}")
        pen_down = True
    return " ".join(parts)
