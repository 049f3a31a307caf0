/* Fleet page: the wall that moves by itself.
   Follows ws/fleet/: a sync or a collection names the routers whose rows changed, and the page asks
   the server for those rows (rendered from the database by the same partial as the page), the
   summary band and the count, then swaps them in place, in the list's order. No reload, ever.
   When the socket cannot connect, the same request refreshes every row every N seconds instead,
   and the indicator says so. Updates can be paused (remembered) while someone reads.
   The HTML swapped in is the console's own server-rendered markup; nothing from the socket is
   ever inserted as markup. Dropdowns of the filter form submit it as soon as they change. */
(function () {
  "use strict";

  var KEY = "vrconsole-fleet-live-paused";
  var live = document.getElementById("live-fleet");
  var body = document.querySelector("[data-fleet-rows]");
  var form = document.getElementById("fleet-filters");

  if (form) {
    Array.prototype.forEach.call(form.querySelectorAll("select"), function (select) {
      select.addEventListener("change", function () { form.submit(); });
    });
  }
  if (!live || !body) { return; }

  var indicator = live.querySelector("[data-live-indicator]");
  var toggle = document.getElementById("refresh-toggle");
  var status = document.getElementById("refresh-status");
  var rowsUrl = live.getAttribute("data-rows-url");
  var fallbackSeconds = parseInt(live.getAttribute("data-fallback-seconds"), 10) || 30;
  var CLOSE_NOT_SIGNED_IN = 4401;
  var MAX_BACKOFF_S = 30;
  var DEBOUNCE_MS = 300;

  var changed = {};
  var everything = false;
  var summaryDirty = false;
  var timer = null;
  var busy = false;
  var again = false;
  var fallback = null;
  var attempts = 0;
  var connectedOnce = false;

  function paused() {
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }

  function setIndicator(text, tone, state) {
    indicator.textContent = text;
    indicator.className = "badge live-indicator " + tone;
    live.setAttribute("data-live-status", state);
  }

  function drawToggle() {
    var on = paused();
    toggle.textContent = on ? "resume live updates (paused)" : "pause live updates";
    live.classList.toggle("paused", on);
    status.classList.toggle("stale", on);
  }

  function parse(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    return holder.content.firstElementChild;
  }

  function shownIds() {
    return Array.prototype.map.call(body.querySelectorAll("tr[data-router-id]"), function (row) {
      return row.getAttribute("data-router-id");
    });
  }

  function requestUrl(names, all) {
    var query = new URLSearchParams(window.location.search);
    if (all) { query.set("all", "1"); } else { query.set("changed", names.join(",")); }
    query.set("shown", shownIds().join(","));
    query.set("fresh", "1");
    return rowsUrl + "?" + query.toString();
  }

  function apply(data, names) {
    var summary = document.querySelector("section.summary");
    if (summary && data.summary) { summary.replaceWith(parse(data.summary)); }
    var count = document.querySelector("[data-fleet-count]");
    if (count && data.count) { count.replaceWith(parse(data.count)); }
    var existing = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-router-id]"), function (row) {
      existing[row.getAttribute("data-router-id")] = row;
    });
    var rows = document.createDocumentFragment();
    var missing = false;
    data.order.forEach(function (id) {
      var key = String(id);
      var row = data.rows[key] ? parse(data.rows[key]) : existing[key];
      if (!row) { missing = true; return; }
      if (data.rows[key] && names.indexOf(key) !== -1) { row.classList.add("row-changed"); }
      rows.appendChild(row);
    });
    body.replaceChildren(rows);
    if (!data.order.length && data.empty) { body.appendChild(parse(data.empty)); }
    if (missing) { everything = true; schedule(); }
    if (status) {
      var time = document.createElement("time");
      time.setAttribute("datetime", data.updated);
      time.textContent = data.updated.substring(11, 19) + " UTC";
      status.replaceChildren("updated ", time);
    }
    body.setAttribute("data-updated", data.updated);
  }

  function refresh() {
    timer = null;
    if (paused()) { return; }
    if (busy) { again = true; return; }
    var names = Object.keys(changed);
    var all = everything;
    if (!all && !names.length && !summaryDirty) { return; }
    changed = {};
    everything = false;
    summaryDirty = false;
    busy = true;
    fetch(requestUrl(names, all), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("the console answered " + response.status); }
        return response.json();
      })
      .then(function (data) { apply(data, names); }, function () {
        // Try again with everything: whatever changed is re-read from the database next time.
        everything = true;
        if (status) { status.textContent = "update failed; retrying"; status.classList.add("stale"); }
        window.setTimeout(schedule, 5000);
      })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (!timer) { timer = window.setTimeout(refresh, DEBOUNCE_MS); }
  }

  function startFallback() {
    if (fallback) { return; }
    fallback = window.setInterval(function () { everything = true; refresh(); }, fallbackSeconds * 1000);
  }

  function stopFallback() {
    if (fallback) { window.clearInterval(fallback); fallback = null; }
  }

  var handlers = {
    "state": function () {
      // A reconnect may have missed events: read every row again once.
      if (connectedOnce) { everything = true; schedule(); }
      connectedOnce = true;
    },
    "fleet.status": function (event) { changed[String(event.router_id)] = true; summaryDirty = true; schedule(); },
    "fleet.routers": function (event) {
      if (event.truncated) { everything = true; }
      (event.router_ids || []).forEach(function (id) { changed[String(id)] = true; });
      summaryDirty = true;
      schedule();
    },
    "sync.finished": function () { summaryDirty = true; schedule(); }
  };

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + live.getAttribute("data-socket-path"));
    socket.onopen = function () {
      attempts = 0;
      stopFallback();
      setIndicator("● live", "tone-ok", "connected");
    };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      var handler = handlers[event.type];
      if (handler) { handler(event); }
    };
    socket.onclose = function (close) {
      if (close.code === CLOSE_NOT_SIGNED_IN) {
        stopFallback();
        setIndicator("✖ live: signed out, reload the page to sign in", "tone-crit", "signed-out");
        return;
      }
      startFallback();
      var delay = Math.min(MAX_BACKOFF_S, Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      setIndicator("⚠ live: disconnected, refreshing every " + fallbackSeconds + " s; reconnecting in " +
        Math.ceil(delay) + " s", "tone-warn", "disconnected");
      window.setTimeout(connect, delay * 1000);
    };
  }

  toggle.addEventListener("click", function () {
    var now = paused();
    try { window.localStorage.setItem(KEY, now ? "0" : "1"); } catch (e) { /* stays as it is */ }
    drawToggle();
    if (now) { everything = true; schedule(); }
  });
  drawToggle();
  connect();
})();
