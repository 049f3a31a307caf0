/* Router page, live tail: one log of the router followed live over a WebSocket, or the same log of
   both members of a redundant pair side by side on one time axis.
   Every address comes from data-* attributes of #live-tail. Lines are numbered by the server; the
   page acknowledges the lines it has shown, resumes after a reconnect from the last line it has,
   and marks every gap it is told about ("N lines skipped"). While paused, lines are held (not
   shown, not acknowledged): the server holds back the rest, so nothing is lost and memory stays
   bounded. A log line is text: it is only ever set with textContent. */
(function () {
  "use strict";

  var root = document.getElementById("live-tail");
  if (!root) { return; }
  var logSelect = root.querySelector("[data-tail-log]");
  if (!logSelect) { return; }

  var pairBox = root.querySelector("[data-tail-pair]");
  var startButton = root.querySelector("[data-tail-start]");
  var stopButton = root.querySelector("[data-tail-stop]");
  var bar = root.querySelector("[data-tail-bar]");
  var statuses = root.querySelector("[data-tail-statuses]");
  var followButton = root.querySelector("[data-tail-follow]");
  var pausedNote = root.querySelector("[data-tail-paused]");
  var filterInput = root.querySelector("[data-tail-filter]");
  var countNote = root.querySelector("[data-tail-count]");
  var rateNote = root.querySelector("[data-tail-rate]");
  var downloadButton = root.querySelector("[data-tail-download]");
  var columns = root.querySelector("[data-tail-columns]");
  var pane = root.querySelector("[data-tail-pane]");

  var MAX_ROWS = 10000;
  var MAX_BACKOFF_S = 30;
  var CLOSE_REASONS = {
    4401: "signed out: reload the page to sign in",
    4403: "live tails are for operators",
    4404: "this router does not have that log (any more): reload the page"
  };
  var SEVERITY_GLYPH = { crit: "▲", warn: "⚠", benign: "·" };
  var STATUS_LOOK = {
    waiting: ["◷", "tone-info", "waiting for a tail worker"],
    connecting: ["◷", "tone-info", "connecting"],
    streaming: ["●", "tone-ok", "live"],
    retrying: ["⚠", "tone-warn", "SSH session lost"],
    ended: ["✖", "tone-crit", "ended"],
    stopped: ["■", "tone-unknown", "stopped"],
    restarted: ["↻", "tone-warn", "restarted"],
    reconnecting: ["⚠", "tone-warn", "reconnecting to the console"],
    closed: ["■", "tone-unknown", "closed"]
  };

  var streams = [];
  var entries = [];        // shown rows, oldest first: {at, side, seq, text, kind, sev, el}
  var pending = [];        // held while paused: {stream, line}
  var paused = false;
  var dropped = 0;         // rows removed from the top to keep the page light
  var lineCount = 0;       // log lines among the rows
  var matchCount = 0;      // of which the filter shows
  var arrivals = [];       // arrival times (ms) of recent lines, for the rate
  var filter = null;
  var pairMode = false;
  var rateTimer = null;

  // --- one socket per (router, log) ----------------------------------------------------

  function Stream(side, base, name, log) {
    this.side = side;
    this.base = base;
    this.name = name;
    this.log = log;
    this.epoch = "";
    this.last = 0;        // last line number received (shown or held)
    this.latest = 0;      // newest line number the server mentioned
    this.shown = 0;       // last line number shown (acknowledged)
    this.attempts = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
    this.status = "connecting";
    this.reason = "";
    this.retryIn = null;
    this.statusAt = Date.now();
    this.workers = 1;
    this.el = document.createElement("span");
    this.el.className = "badge tail-status";
    statuses.appendChild(this.el);
  }

  Stream.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var query = this.epoch ? "?after=" + this.last + "&epoch=" + encodeURIComponent(this.epoch) : "";
    return scheme + window.location.host + this.base + encodeURIComponent(this.log) + "/" + query;
  };

  Stream.prototype.open = function () {
    var stream = this;
    stream.timer = null;
    var socket = new WebSocket(stream.url());
    stream.socket = socket;
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      stream.handle(event);
    };
    socket.onclose = function (close) {
      stream.socket = null;
      if (stream.stopped) { return; }
      if (CLOSE_REASONS[close.code]) {
        stream.stopped = true;
        stream.setStatus("ended", CLOSE_REASONS[close.code]);
        return;
      }
      // Exponential backoff with jitter: a restarted server is not hit by every page at once.
      var delay = Math.min(MAX_BACKOFF_S, Math.pow(2, stream.attempts)) * (0.75 + Math.random() * 0.5);
      stream.attempts += 1;
      stream.setStatus("reconnecting", "", delay);
      stream.timer = window.setTimeout(function () { stream.open(); }, delay * 1000);
    };
  };

  Stream.prototype.close = function () {
    this.stopped = true;
    if (this.timer) { window.clearTimeout(this.timer); }
    if (this.socket) { this.socket.close(1000); }
    this.setStatus("closed", "");
  };

  Stream.prototype.ack = function (seq) {
    if (seq <= this.shown) { return; }
    this.shown = seq;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ ack: seq }));
    }
  };

  Stream.prototype.setStatus = function (status, reason, retryIn) {
    this.status = status;
    this.reason = reason || "";
    this.retryIn = retryIn == null ? null : retryIn;
    this.statusAt = Date.now();
    drawStatus(this);
  };

  Stream.prototype.handle = function (event) {
    if (event.type === "tail.state") {
      this.attempts = 0;
      this.workers = event.workers;
      var had = this.last > 0;
      if (had && !event.resumed) {
        marker(this, "↻ reconnected, but the lines after #" + this.last +
          " are no longer kept (or the tail started over): what follows starts at its last lines", "warn");
        this.last = 0;
        this.shown = 0;
      }
      this.epoch = event.epoch || "";
      this.latest = event.latest;
      this.setStatus(event.status, event.reason, event.retry_in);
    } else if (event.type === "tail.lines") {
      if (event.epoch && !this.epoch) { this.epoch = event.epoch; }
      var stream = this;
      event.lines.forEach(function (line) {
        if (line.s <= stream.last) { return; }   // a repeat after a reconnect: never shown twice
        stream.last = line.s;
        stream.latest = Math.max(stream.latest, line.s);
        receive(stream, line);
      });
      if (this.status !== "streaming" && this.status !== "retrying") { this.setStatus("streaming", ""); }
    } else if (event.type === "tail.skipped") {
      marker(this, "✖ " + event.count.toLocaleString() + " line" + (event.count === 1 ? "" : "s") +
        " skipped (" + event.reason + ")", "crit");
      this.last = Math.max(this.last, event.before - 1);
      if (!paused) { this.ack(this.last); }
    } else if (event.type === "tail.status") {
      if (event.status === "restarted") {
        marker(this, "↻ " + event.reason, "warn");
        this.last = 0;
        this.shown = 0;
        this.latest = 0;
        return;
      }
      if (event.epoch && !this.epoch) { this.epoch = event.epoch; }
      this.setStatus(event.status, event.reason, event.retry_in);
    } else if (event.type === "tail.position") {
      this.latest = Math.max(this.latest, event.latest);
      drawPaused();
    }
  };

  function drawStatus(stream) {
    var look = STATUS_LOOK[stream.status] || ["?", "tone-unknown", stream.status];
    var text = look[0] + " " + (pairMode ? stream.name + ": " : "") + look[2];
    if (stream.status === "waiting" && !stream.workers) {
      text = "✖ " + (pairMode ? stream.name + ": " : "") + "no tail worker is running (start manage.py tail_worker)";
    }
    if (stream.retryIn != null && (stream.status === "retrying" || stream.status === "reconnecting")) {
      text += ", next try in " + Math.ceil(stream.retryIn) + " s";
    }
    if (stream.reason) { text += ": " + stream.reason; }
    stream.el.textContent = text;
    stream.el.className = "badge tail-status " + look[1];
    stream.el.setAttribute("data-status", stream.status);
    root.setAttribute("data-tail-status", streams.map(function (s) { return s.status; }).join(" "));
  }

  // --- rows ------------------------------------------------------------------------------

  function clock(ms) {
    var d = new Date(ms);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    var milli = d.getUTCMilliseconds();
    return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + ":" + two(d.getUTCSeconds()) + "." +
      (milli < 10 ? "00" : milli < 100 ? "0" : "") + milli;
  }

  function rowFor(entry) {
    var row = document.createElement("div");
    row.className = "tail-line" + (entry.sev ? " sev-" + entry.sev : "") + (entry.kind !== "line" ? " tail-" + entry.kind : "");
    row.setAttribute("data-seq", entry.seq);
    row.setAttribute("data-side", entry.side);
    var gutter = document.createElement("span");
    gutter.className = "tail-gutter";
    gutter.textContent = entry.kind === "notice" ? "ℹ" : entry.kind === "marker" ? "" : (SEVERITY_GLYPH[entry.sev] || "");
    row.appendChild(gutter);
    if (pairMode) {
      var time = document.createElement("span");
      time.className = "tail-time";
      time.textContent = clock(entry.at);
      time.title = new Date(entry.at).toISOString();
      row.appendChild(time);
      var left = document.createElement("span");
      var right = document.createElement("span");
      left.className = right.className = "tail-text";
      (entry.side === "a" ? left : right).textContent = entry.text;
      row.appendChild(left);
      row.appendChild(right);
    } else {
      var text = document.createElement("span");
      text.className = "tail-text";
      text.textContent = entry.text;
      row.appendChild(text);
    }
    return row;
  }

  function before(a, b) {
    // One time axis: by the line's time, then the pair's left member first, then line order.
    if (a.at !== b.at) { return a.at < b.at; }
    if (a.side !== b.side) { return a.side < b.side; }
    return a.seq < b.seq;
  }

  function tally(entry, sign) {
    if (entry.kind !== "line") { return; }
    lineCount += sign;
    if (!entry.el.hidden) { matchCount += sign; }
  }

  function insert(entry) {
    entry.el = rowFor(entry);
    applyFilter(entry);
    tally(entry, 1);
    var index = entries.length;
    if (pairMode) {
      // Lines mostly arrive in time order: walk back from the end to the first earlier one.
      while (index > 0 && before(entry, entries[index - 1])) { index -= 1; }
    }
    if (index === entries.length) {
      entries.push(entry);
      pane.appendChild(entry.el);
    } else {
      pane.insertBefore(entry.el, entries[index].el);
      entries.splice(index, 0, entry);
    }
    while (entries.length > MAX_ROWS) {
      var oldest = entries.shift();
      tally(oldest, -1);
      oldest.el.remove();
      dropped += 1;
    }
  }

  function marker(stream, text, sev) {
    var at = entries.length ? entries[entries.length - 1].at : Date.now();
    var entry = { at: Math.max(at, Date.now()), side: stream.side, seq: stream.last + 0.5, text: (pairMode ? stream.name + ": " : "") + text,
      kind: "marker", sev: sev };
    if (paused) { pending.push({ stream: stream, entry: entry }); drawPaused(); return; }
    insert(entry);
    scrollToEnd();
    drawCount();
  }

  function receive(stream, line) {
    arrivals.push(Date.now());
    var entry = { at: line.at, side: stream.side, seq: line.s, text: line.t, kind: line.k, sev: line.sev };
    if (paused) {
      pending.push({ stream: stream, entry: entry });
      drawPaused();
      return;
    }
    show(stream, entry);
  }

  var scrollQueued = false;
  function scrollToEnd() {
    if (scrollQueued || paused) { return; }
    scrollQueued = true;
    window.requestAnimationFrame(function () {
      scrollQueued = false;
      pane.scrollTop = pane.scrollHeight;
    });
  }

  var ackQueued = false;
  function show(stream, entry) {
    insert(entry);
    scrollToEnd();
    if (!ackQueued) {
      // One acknowledgement per stream per frame, once the lines are in the page.
      ackQueued = true;
      window.requestAnimationFrame(function () {
        ackQueued = false;
        streams.forEach(function (s) { if (!paused) { s.ack(s.last); } });
        drawCount();
      });
    }
  }

  // --- pause, filter, counts, rate, download -------------------------------------------

  function drawPaused() {
    if (!paused) { pausedNote.hidden = true; return; }
    var waiting = pending.filter(function (p) { return p.entry.kind !== "marker"; }).length;
    streams.forEach(function (s) { waiting += Math.max(0, s.latest - s.last); });
    pausedNote.textContent = "■ paused · " + waiting.toLocaleString() + " new line" + (waiting === 1 ? "" : "s");
    pausedNote.hidden = false;
  }

  function setPaused(value) {
    paused = value;
    followButton.textContent = paused ? "▶ Resume" : "‖ Pause";
    root.setAttribute("data-tail-paused", paused ? "true" : "false");
    if (!paused) {
      var held = pending;
      pending = [];
      held.forEach(function (p) { insert(p.entry); });
      streams.forEach(function (s) { s.ack(s.last); });
      scrollToEnd();
      drawCount();
    }
    drawPaused();
  }

  function compileFilter(text) {
    if (!text) { return null; }
    var match = /^\/(.+)\/([imsu]*)$/.exec(text);
    if (match) {
      try {
        var pattern = new RegExp(match[1], match[2]);
        filterInput.setCustomValidity("");
        return function (line) { return pattern.test(line); };
      } catch (e) {
        filterInput.setCustomValidity("not a valid regular expression: matching the text as typed");
      }
    } else {
      filterInput.setCustomValidity("");
    }
    var needle = text.toLowerCase();
    return function (line) { return line.toLowerCase().indexOf(needle) !== -1; };
  }

  function applyFilter(entry) {
    entry.el.hidden = !!(filter && entry.kind === "line" && !filter(entry.text));
  }

  function drawCount() {
    var text = filter ? matchCount.toLocaleString() + " of " + lineCount.toLocaleString() + " lines match" :
      lineCount.toLocaleString() + " line" + (lineCount === 1 ? "" : "s");
    if (dropped) { text += " · " + dropped.toLocaleString() + " older removed from view"; }
    countNote.textContent = text;
  }

  function drawRate() {
    var now = Date.now();
    while (arrivals.length && arrivals[0] < now - 5000) { arrivals.shift(); }
    rateNote.textContent = (arrivals.length / 5).toFixed(1) + " lines/s";
    streams.forEach(function (s) {
      if (s.retryIn != null && (s.status === "retrying" || s.status === "reconnecting")) {
        var left = s.retryIn - (now - s.statusAt) / 1000;
        if (left > 0) { s.el.textContent = s.el.textContent.replace(/next try in \d+ s/, "next try in " + Math.ceil(left) + " s"); }
      }
    });
  }

  function download() {
    var names = {};
    streams.forEach(function (s) { names[s.side] = s.name; });
    var text = entries.filter(function (entry) { return !entry.el.hidden; }).map(function (entry) {
      var body = entry.kind === "line" ? entry.text : "### " + entry.text;
      return pairMode ? new Date(entry.at).toISOString() + " [" + names[entry.side] + "] " + body : body;
    }).join("\n") + "\n";
    var stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    link.download = streams.map(function (s) { return s.name; }).join("+") + "_" + logSelect.value + "_" + stamp + ".log";
    document.body.appendChild(link);
    link.click();
    window.setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  // --- start and stop --------------------------------------------------------------------

  function peerHas(log) {
    var logs = (root.getAttribute("data-peer-logs") || "").split(" ");
    return logs.indexOf(log) !== -1;
  }

  function syncPairBox() {
    if (!pairBox) { return; }
    var possible = peerHas(logSelect.value);
    pairBox.disabled = !possible;
    if (!possible) { pairBox.checked = false; }
    pairBox.parentNode.title = possible ? "Both members of the pair in two columns on one time axis" :
      "The peer's last collection does not list this log";
  }

  function stop() {
    streams.forEach(function (s) { s.close(); });
    streams = [];
    startButton.hidden = false;
    stopButton.hidden = true;
    logSelect.disabled = false;
    if (pairBox) { syncPairBox(); }
    root.setAttribute("data-tail-running", "false");
  }

  function start() {
    stop();
    statuses.replaceChildren();
    pane.replaceChildren();
    entries = [];
    pending = [];
    dropped = 0;
    lineCount = 0;
    matchCount = 0;
    arrivals = [];
    pairMode = !!(pairBox && pairBox.checked);
    pane.classList.toggle("pair", pairMode);
    columns.hidden = !pairMode;
    columns.replaceChildren();
    var log = logSelect.value;
    var name = root.getAttribute("data-router-name");
    streams.push(new Stream("a", root.getAttribute("data-socket-base"), name, log));
    if (pairMode) {
      var peerName = root.getAttribute("data-peer-name");
      streams.push(new Stream("b", root.getAttribute("data-peer-socket-base"), peerName, log));
      ["time (UTC)", name + " (" + (root.getAttribute("data-redundant-state") || "?") + ")",
        peerName + " (" + (root.getAttribute("data-peer-redundant-state") || "?") + ")"].forEach(function (title) {
        var head = document.createElement("span");
        head.textContent = title;
        columns.appendChild(head);
      });
    }
    streams.forEach(function (s) { s.setStatus("connecting", ""); s.open(); });
    bar.hidden = false;
    pane.hidden = false;
    startButton.hidden = true;
    stopButton.hidden = false;
    logSelect.disabled = true;
    if (pairBox) { pairBox.disabled = true; }
    setPaused(false);
    drawCount();
    root.setAttribute("data-tail-running", "true");
    if (!rateTimer) { rateTimer = window.setInterval(drawRate, 1000); }
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  followButton.addEventListener("click", function () { setPaused(!paused); });
  downloadButton.addEventListener("click", download);
  logSelect.addEventListener("change", syncPairBox);
  var filterTimer = null;
  filterInput.addEventListener("input", function () {
    if (filterTimer) { window.clearTimeout(filterTimer); }
    filterTimer = window.setTimeout(function () {
      filter = compileFilter(filterInput.value.trim());
      matchCount = 0;
      entries.forEach(function (entry) {
        applyFilter(entry);
        if (entry.kind === "line" && !entry.el.hidden) { matchCount += 1; }
      });
      drawCount();
    }, 150);
  });
  window.addEventListener("pagehide", function () { streams.forEach(function (s) { s.close(); }); });
  syncPairBox();
})();
