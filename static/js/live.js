/* Router page, live triage panel: follows the router's socket and fills in the latest
   collection probe by probe, then its outcome; operators can start a run with "Collect now".
   Every address comes from data-* attributes of #live-panel. On (re)connect the server sends
   the whole current state, so the panel is redrawn from it and a missed event costs nothing.
   Text from the server is only ever set with textContent: probe errors can quote router output. */
(function () {
  "use strict";

  var panel = document.getElementById("live-panel");
  if (!panel) { return; }

  var indicator = panel.querySelector("[data-live-indicator]");
  var summary = panel.querySelector("[data-live-summary]");
  var table = panel.querySelector("[data-live-table]");
  var rows = panel.querySelector("[data-live-probes]");
  var outcome = panel.querySelector("[data-live-outcome]");
  var findingsNote = panel.querySelector("[data-live-findings]");
  var form = panel.querySelector("[data-collect-form]");
  var details = panel.querySelector("[data-live-details]");
  var openedByHand = false;
  var reasonsNode = document.getElementById("live-reasons");
  var reasons = reasonsNode ? JSON.parse(reasonsNode.textContent) : {};

  var CLOSE_NOT_SIGNED_IN = 4401;
  var CLOSE_NO_SUCH_ROUTER = 4404;
  var MAX_BACKOFF_S = 30;

  var current = null;      // the collection shown: {collection_id, status, ...}
  var attempts = 0;
  var retryTimer = null;

  var PROBE_LOOK = {
    running: ["◷ running", "tone-info"],
    ok: ["● ok", "tone-ok"],
    error: ["▲ failed", "tone-crit"],
    "not-applicable": ["– does not apply", "tone-quiet"],
    unfinished: ["■ no answer", "tone-unknown"]
  };

  function setIndicator(text, tone) {
    indicator.textContent = text;
    indicator.className = "badge live-indicator " + tone;
    panel.setAttribute("data-live-status", tone === "tone-ok" ? "connected" : "disconnected");
  }

  function seconds(value) {
    return typeof value === "number" ? value.toFixed(value < 10 ? 2 : 1) + " s" : "";
  }

  function probeRow(probe) {
    var row = rows.querySelector('tr[data-probe="' + CSS.escape(probe) + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-probe", probe);
      for (var i = 0; i < 4; i++) { row.appendChild(document.createElement("td")); }
      row.cells[1].className = "mono";
      row.cells[2].className = "num mono";
      row.cells[3].className = "details";
      row.cells[1].textContent = probe;
      rows.appendChild(row);
    }
    return row;
  }

  function showProbe(event) {
    var look = PROBE_LOOK[event.status] || ["? " + event.status, "tone-unknown"];
    var row = probeRow(event.probe);
    row.setAttribute("data-status", event.status);
    var badge = document.createElement("span");
    badge.className = "badge " + look[1];
    badge.textContent = look[0];
    row.cells[0].replaceChildren(badge);
    row.cells[2].textContent = seconds(event.duration_s);
    row.cells[3].textContent = event.error || "";
    row.classList.toggle("row-crit", event.status === "error");
    table.hidden = false;
    showSummary();
  }

  function counts() {
    var done = rows.querySelectorAll(
      'tr[data-status="ok"], tr[data-status="error"], tr[data-status="not-applicable"]'
    ).length;
    var failed = rows.querySelectorAll('tr[data-status="error"]').length;
    return { done: done, failed: failed };
  }

  function ago(iso) {
    var then = Date.parse(iso);
    if (isNaN(then)) { return ""; }
    var s = Math.max(0, Math.round((Date.now() - then) / 1000));
    if (s < 60) { return s + " s ago"; }
    if (s < 3600) { return Math.round(s / 60) + " min ago"; }
    if (s < 172800) { return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min ago"; }
    return Math.floor(s / 86400) + " d ago";
  }

  function showSummary() {
    if (!current) {
      summary.textContent = "No collection of this router yet.";
      return;
    }
    var c = counts();
    var finished = current.status && current.status !== "pending" && current.status !== "running";
    if (finished) {
      // The panel answers in one line once the run is over; the table stays one click away.
      var total = rows.querySelectorAll("tr[data-probe]").length;
      summary.textContent = total + " probe" + (total === 1 ? "" : "s") + ", " + c.failed + " failed" +
        (current.duration_s != null ? ", in " + seconds(current.duration_s) : "") +
        (current.finished ? ", " + ago(current.finished) : "") +
        (current.status !== "succeeded" ? ": " + current.status : "") + " · collection #" + current.collection_id;
      // A run that failed keeps its table open: which probe went unanswered is the answer then.
      if (details && !openedByHand) { details.open = current.status !== "succeeded"; }
      return;
    }
    if (details) { details.open = true; }
    var who = current.trigger ? " (" + current.trigger + (current.requested_by ? " by " + current.requested_by : "") + ")" : "";
    summary.textContent = "Collection #" + current.collection_id + who + ": " + c.done + " probe" +
      (c.done === 1 ? "" : "s") + " done, " + c.failed + " failed.";
  }

  function sentence(text) {
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  function markUnfinishedProbes() {
    // A run that ended (unreachable mid-way, a bug) leaves its last probe without an answer.
    rows.querySelectorAll('tr[data-status="running"]').forEach(function (row) {
      showProbe({ probe: row.getAttribute("data-probe"), status: "unfinished" });
    });
  }

  function showOutcome() {
    var status = current && current.status;
    var text;
    var tone;
    if (!status || status === "pending") {
      text = "◷ Queued: waiting for a worker to pick it up.";
      tone = "tone-info";
    } else if (status === "running") {
      text = "◷ Running: probes appear above as they finish.";
      tone = "tone-info";
    } else if (status === "succeeded") {
      text = "● Succeeded" + (current.duration_s != null ? " in " + seconds(current.duration_s) : "") +
        (current.probe_errors ? ", " + current.probe_errors + " probe(s) with errors (see above)." : ", every probe answered.");
      tone = current.probe_errors ? "tone-warn" : "tone-ok";
    } else if (status === "failed") {
      text = sentence("▲ Failed: " + (reasons[current.reason] || current.reason || "no reason given") +
        (current.error ? " — " + current.error : "")) + " Check the router is Running and reachable, then collect again.";
      tone = "tone-crit";
    } else {
      text = "▲ Errored: the console hit a bug (" + (current.error || "no message") +
        "). The traceback is kept on the collection; tell the console's maintainers.";
      tone = "tone-crit";
    }
    outcome.textContent = text;
    outcome.className = "live-outcome alert " + tone;
    outcome.setAttribute("data-outcome", status || "pending");
    outcome.hidden = false;
    setCollectBusy(status === "pending" || status === "running");
  }

  function startCollection(fields) {
    current = fields;
    rows.replaceChildren();
    table.hidden = true;
  }

  function onState(state) {
    findingsNote.hidden = true;
    if (!state.collection) {
      current = null;
      rows.replaceChildren();
      table.hidden = true;
      outcome.hidden = true;
      showSummary();
      setCollectBusy(false);
      return;
    }
    startCollection(state.collection);
    (state.probes || []).forEach(showProbe);
    showSummary();
    showOutcome();
  }

  function isOlder(event) {
    // A late event of an earlier run must not replace the run on screen (ids only grow).
    return current !== null && event.collection_id < current.collection_id;
  }

  function onProgress(event) {
    if (isOlder(event)) { return; }
    if (!current || current.collection_id !== event.collection_id) {
      startCollection({ collection_id: event.collection_id, status: "running" });
    }
    if (current.status === "pending") { current.status = "running"; }
    showProbe(event);
    showOutcome();
  }

  function onFinished(event) {
    if (isOlder(event)) { return; }
    if (!current || current.collection_id !== event.collection_id) {
      startCollection({ collection_id: event.collection_id });
    }
    ["status", "reason", "error", "duration_s", "probe_errors"].forEach(function (key) {
      current[key] = event[key];
    });
    if (!current.finished) { current.finished = new Date().toISOString(); }
    markUnfinishedProbes();
    if (collectMessage) { collectMessage.textContent = ""; }
    showSummary();
    showOutcome();
  }

  var SEVERITY_GLYPH = { critical: "▲", warning: "⚠", info: "ℹ" };

  function onVerdicts(event) {
    var open = event.open || [];
    var worst = open.length ? open[0].severity : "";
    var names = open.slice(0, 5).map(function (finding) {
      return (SEVERITY_GLYPH[finding.severity] || "?") + " " + finding.rule;
    });
    findingsNote.textContent = "Findings now: " + (open.length ? open.length + " open (" + names.join(", ") +
      (open.length > names.length ? ", …" : "") + ")" : "none open") + "; " + (event.opened || 0) + " opened, " +
      (event.resolved || 0) + " resolved by this run. Reload the page for their evidence.";
    findingsNote.className = "live-findings-note alert " +
      (worst === "critical" ? "tone-crit" : worst === "warning" ? "tone-warn" : "tone-ok");
    findingsNote.hidden = false;
  }

  var handlers = {
    "state": onState,
    "collection.progress": onProgress,
    "collection.finished": onFinished,
    "verdicts.updated": onVerdicts
  };

  function connect() {
    retryTimer = null;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + panel.getAttribute("data-socket-path"));
    socket.onopen = function () {
      attempts = 0;
      setIndicator("● live: connected", "tone-ok");
    };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      var handler = handlers[event.type];
      if (handler) { handler(event); }
    };
    socket.onclose = function (close) {
      if (close.code === CLOSE_NOT_SIGNED_IN) {
        setIndicator("✖ live: signed out, reload the page to sign in", "tone-crit");
        return;
      }
      if (close.code === CLOSE_NO_SUCH_ROUTER) {
        setIndicator("✖ live: the console no longer knows this router", "tone-crit");
        return;
      }
      // Exponential backoff with jitter, so a restarted server is not hit by every wall screen at once.
      var delay = Math.min(MAX_BACKOFF_S, Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      setIndicator("◷ live: reconnecting in " + Math.ceil(delay) + " s…", "tone-warn");
      retryTimer = window.setTimeout(connect, delay * 1000);
    };
  }

  // Collect now (operators only: the form is absent for viewers).
  var collectButton = form ? form.querySelector("[data-collect-button]") : null;
  var collectMessage = form ? form.querySelector("[data-collect-message]") : null;

  function setCollectBusy(busy) {
    if (collectButton) {
      collectButton.disabled = busy;
      collectButton.textContent = busy ? "◷ Collecting…" : "▶ Collect now";
    }
  }

  if (form) {
    form.addEventListener("submit", function (submit) {
      submit.preventDefault();
      var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
      setCollectBusy(true);
      collectMessage.textContent = "Asking for a collection…";
      fetch(panel.getAttribute("data-collect-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": token, "Accept": "application/json" }
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; },
          function () { return { ok: false, body: { error: "The console answered " + response.status + "." } }; });
      }).then(function (answer) {
        if (!answer.ok) {
          collectMessage.textContent = "✖ " + (answer.body.error || "The request was refused.");
          setCollectBusy(false);
          return;
        }
        collectMessage.textContent = answer.body.already_running ?
          "Collection #" + answer.body.collection_id + " was already " + answer.body.status + "; following it." :
          "✓ Collection #" + answer.body.collection_id + " queued.";
        if (!current || current.collection_id !== answer.body.collection_id) {
          startCollection({ collection_id: answer.body.collection_id, status: answer.body.status, trigger: "operator" });
          showSummary();
          showOutcome();
        }
      }, function () {
        collectMessage.textContent = "✖ The console did not answer; check your connection and try again.";
        setCollectBusy(false);
      });
    });
  }

  if (details) {
    details.querySelector("summary").addEventListener("click", function () {
      // Someone opened the table to read it: a finishing run must not fold it under them.
      openedByHand = !details.open;
    });
  }

  window.addEventListener("pagehide", function () {
    if (retryTimer) { window.clearTimeout(retryTimer); }
  });
  connect();
})();
