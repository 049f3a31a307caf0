/* Health charts: draws plotly figures built by the server (diagnostics/charts.py).
   Router page: [data-chart-source] names the JSON endpoint; the range buttons and the custom
   range refetch it and keep the range in the address (a chart range is a URL to paste in a
   ticket). Fleet trends: [data-figure] elements name a json_script holding one figure.
   Page colours come from the CSS variables of the active theme and follow its switch. */
(function () {
  "use strict";
  var drawn = [];

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function themeLayout() {
    var text = cssVar("--text"), muted = cssVar("--muted"), border = cssVar("--border");
    return {
      paper_bgcolor: cssVar("--bg-raised"),
      plot_bgcolor: cssVar("--bg-raised"),
      "font.color": text,
      "xaxis.gridcolor": border,
      "yaxis.gridcolor": border,
      "xaxis.linecolor": border,
      "yaxis.linecolor": border,
      "yaxis.zerolinecolor": border,
      "yaxis2.gridcolor": border,
      "hoverlabel.bgcolor": cssVar("--bg"),
      "hoverlabel.font.color": text,
      "legend.font.color": muted
    };
  }

  function applyTheme(layout) {
    var theme = themeLayout();
    layout.paper_bgcolor = theme.paper_bgcolor;
    layout.plot_bgcolor = theme.plot_bgcolor;
    layout.font = Object.assign({}, layout.font || {}, { color: theme["font.color"] });
    ["xaxis", "yaxis", "yaxis2"].forEach(function (axis) {
      if (!layout[axis]) { return; }
      layout[axis].gridcolor = theme["yaxis.gridcolor"];
      layout[axis].linecolor = theme["yaxis.linecolor"];
      layout[axis].zerolinecolor = theme["yaxis.zerolinecolor"];
    });
    layout.hoverlabel = { bgcolor: theme["hoverlabel.bgcolor"], font: { color: theme["hoverlabel.font.color"] } };
    layout.legend = Object.assign({}, layout.legend || {}, { font: { color: theme["legend.font.color"] } });
    return layout;
  }

  function openCollection(event) {
    var point = event.points && event.points[0];
    if (!point || point.customdata === undefined || point.customdata === null) { return; }
    var target = point.customdata;
    if (typeof target === "number") { target = "/collections/" + target + "/"; }
    if (typeof target === "string" && target.indexOf("/collections/") === 0) { window.location.href = target; }
  }

  function draw(element, figure) {
    element.setAttribute("data-chart-drawn", "pending");
    window.Plotly.newPlot(element, figure.data, applyTheme(figure.layout), {
      displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]
    }).then(function () {
      element.setAttribute("data-chart-drawn", "true");
      element.setAttribute("data-chart-theme", document.documentElement.getAttribute("data-theme") || "dark");
    });
    element.on("plotly_click", openCollection);
    drawn.push(element);
  }

  function retheme() {
    var update = themeLayout();
    var theme = document.documentElement.getAttribute("data-theme") || "dark";
    drawn.forEach(function (element) {
      if (!element.isConnected) { return; }
      window.Plotly.relayout(element, update).then(function () { element.setAttribute("data-chart-theme", theme); });
    });
  }

  function currentParams() {
    var query = new URLSearchParams(window.location.search);
    var params = new URLSearchParams();
    if (query.get("start")) {
      params.set("start", query.get("start"));
      if (query.get("end")) { params.set("end", query.get("end")); }
    } else {
      params.set("range", query.get("range") || "24h");
    }
    return params;
  }

  function setParams(params) {
    var url = new URL(window.location.href);
    ["range", "start", "end"].forEach(function (key) { url.searchParams.delete(key); });
    params.forEach(function (value, key) { url.searchParams.set(key, value); });
    url.hash = "charts";
    window.history.replaceState(null, "", url.toString());
  }

  function loadRouterCharts(section) {
    var grid = section.querySelector("[data-chart-grid]");
    var status = section.querySelector("[data-chart-status]");
    var params = currentParams();
    section.querySelectorAll("[data-range]").forEach(function (link) {
      var active = params.get("range") === link.getAttribute("data-range");
      if (active) { link.setAttribute("aria-current", "true"); } else { link.removeAttribute("aria-current"); }
    });
    section.querySelectorAll("[data-export]").forEach(function (link) {
      var base = section.getAttribute(link.getAttribute("data-export") === "csv" ? "data-csv-url" : "data-json-url");
      link.setAttribute("href", base + "?" + params.toString());
    });
    status.textContent = "◷ loading the charts…";
    section.setAttribute("data-chart-state", "loading");
    fetch(section.getAttribute("data-chart-source") + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) { throw new Error(result.body.error || "the server refused the range"); }
        var data = result.body;
        drawn.forEach(function (element) { window.Plotly.purge(element); });
        drawn = [];
        grid.textContent = "";
        data.figures.forEach(function (item) {
          var element = document.createElement("div");
          element.className = "chart";
          element.id = "chart-" + item.id;
          element.setAttribute("data-chart-id", item.id);
          grid.appendChild(element);
          draw(element, item.figure);
        });
        var bucket = data.bucket_seconds >= 3600 ? (data.bucket_seconds / 3600) + " h" : (data.bucket_seconds / 60) + " min";
        status.textContent = data.samples + " sample(s) from " + data.range.start.slice(0, 16).replace("T", " ") +
          " to " + data.range.end.slice(0, 16).replace("T", " ") + " UTC, buckets of " + bucket +
          " (" + data.source + ")" + (data.samples ? "" : " — no data in this range") + (data.note ? ". " + data.note : "");
        section.setAttribute("data-chart-state", "ready");
      })
      .catch(function (error) {
        status.textContent = "▲ Charts unavailable: " + error.message;
        section.setAttribute("data-chart-state", "error");
      });
  }

  function utcInput(value) {
    return value ? value + "Z" : "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Plotly) { return; }
    document.querySelectorAll("[data-figure]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-figure"));
      if (source) { draw(element, JSON.parse(source.textContent)); }
    });
    var section = document.querySelector("[data-chart-source]");
    if (section) {
      section.addEventListener("click", function (event) {
        var link = event.target.closest("[data-range]");
        if (!link) { return; }
        event.preventDefault();
        setParams(new URLSearchParams({ range: link.getAttribute("data-range") }));
        loadRouterCharts(section);
      });
      var form = section.querySelector("[data-custom-range]");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var params = new URLSearchParams({ start: utcInput(form.elements.start.value) });
        if (form.elements.end.value) { params.set("end", utcInput(form.elements.end.value)); }
        setParams(params);
        loadRouterCharts(section);
      });
      loadRouterCharts(section);
    }
    new MutationObserver(retheme).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  });
})();
