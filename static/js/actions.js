/* Router page, actions panel (operators only): opens an action's confirmation, posts it, and follows
   the run on the router's actions socket (steps, CloudStack's job, the outcome), without a reload.
   Also reads CloudStack's record of a failing router on demand and swaps the evidence panel in when
   the read is done. Every address comes from data-* attributes; text from the server (CloudStack's
   error texts, router output) is only ever set with textContent. */
(function () {
  "use strict";

  var panel = document.getElementById("actions");
  if (!panel || !panel.getAttribute("data-socket-path")) { return; }

  var indicator = panel.querySelector("[data-actions-indicator]");
  var message = panel.querySelector("[data-actions-message]");
  var table = panel.querySelector("[data-action-runs]");
  var rows = panel.querySelector("[data-action-rows]");
  var noRuns = panel.querySelector("[data-no-runs]");

  var CLOSE_NOT_SIGNED_IN = 4401;
  var CLOSE_FORBIDDEN = 4403;
  var CLOSE_NO_SUCH_ROUTER = 4404;
  var MAX_BACKOFF_S = 30;
  var attempts = 0;
  var retryTimer = null;

  var STATUS_LOOK = {
    pending: ["◷ queued", "tone-info"],
    running: ["◷ running", "tone-info"],
    succeeded: ["● succeeded", "tone-ok"],
    failed: ["▲ failed", "tone-crit"],
    errored: ["▲ errored", "tone-crit"]
  };

  function csrfToken(form) {
    var input = (form || document).querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(node, text) {
    if (node) { node.textContent = text; }
  }

  function setIndicator(text, tone) {
    indicator.textContent = text;
    indicator.className = "badge " + tone;
    panel.setAttribute("data-actions-status", tone === "tone-ok" ? "connected" : "disconnected");
  }

  /* --- Confirmation dialogs -------------------------------------------------------------- */

  function dialogFor(name) {
    return document.getElementById("action-dialog-" + name);
  }

  function loadOfferings(dialog) {
    var select = dialog.querySelector("[data-offering-select]");
    if (!select || select.getAttribute("data-loaded")) { return; }
    fetch(panel.getAttribute("data-offerings-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
      .then(function (answer) {
        select.replaceChildren();
        if (!answer.ok) {
          var failed = document.createElement("option");
          failed.value = "";
          failed.textContent = "✖ " + (answer.body.error || "CloudStack did not list the offerings");
          select.appendChild(failed);
          return;
        }
        var placeholder = document.createElement("option");
        placeholder.value = "";
        placeholder.textContent = "choose an offering";
        select.appendChild(placeholder);
        answer.body.offerings.forEach(function (offering) {
          var option = document.createElement("option");
          option.value = offering.id;
          option.textContent = offering.name + (offering.cpunumber ? " (" + offering.cpunumber + " vCPU, " + offering.memory + " MB)" : "") +
            (offering.name === answer.body.current ? " — current" : "");
          select.appendChild(option);
        });
        select.setAttribute("data-loaded", "yes");
      }, function () {
        say(dialog.querySelector("[data-dialog-message]"), "✖ The console did not answer; try again.");
      });
  }

  function openAction(name) {
    var dialog = dialogFor(name);
    if (!dialog) {
      var refusal = panel.querySelector('[data-refusal="' + CSS.escape(name) + '"]');
      say(message, refusal ? refusal.textContent : "✖ This action is not available for this router.");
      panel.scrollIntoView({ block: "start" });
      return;
    }
    say(dialog.querySelector("[data-dialog-message]"), "");
    loadOfferings(dialog);
    dialog.showModal();
    var reason = dialog.querySelector("textarea[name=reason]");
    if (reason) { reason.focus(); }
  }

  document.addEventListener("click", function (click) {
    var opener = click.target.closest("[data-open-action]");
    if (opener) {
      click.preventDefault();
      openAction(opener.getAttribute("data-open-action"));
      return;
    }
    var closer = click.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
    }
  });

  panel.querySelectorAll("[data-action-form]").forEach(function (form) {
    form.addEventListener("submit", function (submit) {
      submit.preventDefault();
      var dialog = form.closest("dialog");
      var confirm = form.querySelector("[data-confirm]");
      var dialogMessage = form.querySelector("[data-dialog-message]");
      confirm.disabled = true;
      say(dialogMessage, "");
      fetch(form.getAttribute("action"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(form), "Accept": "application/json" },
        body: new FormData(form)
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; },
          function () { return { ok: false, body: { error: "The console answered " + response.status + "." } }; });
      }).then(function (answer) {
        confirm.disabled = false;
        if (!answer.ok) {
          say(dialogMessage, "✖ " + (answer.body.error || "The request was refused."));
          return;
        }
        dialog.close();
        form.reset();
        say(message, "✓ " + (answer.body.label || "Action") + " queued (run #" + answer.body.action_id + "); its steps appear below.");
        upsertRun({ action_id: answer.body.action_id, status: answer.body.status, label: answer.body.label, progress: [] });
      }, function () {
        confirm.disabled = false;
        say(dialogMessage, "✖ The console did not answer; check your connection and try again.");
      });
    });
  });

  /* --- Runs ------------------------------------------------------------------------------- */

  function cell(row, index) { return row.cells[index]; }

  function rowFor(actionId) {
    var row = rows.querySelector('tr[data-action-id="' + actionId + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-action-id", actionId);
      for (var i = 0; i < 8; i++) { row.appendChild(document.createElement("td")); }
      cell(row, 5).className = "mono";
      rows.insertBefore(row, rows.firstChild);
      table.hidden = false;
      if (noRuns) { noRuns.hidden = true; }
    }
    return row;
  }

  function statusParts(row) {
    // The result cell: a badge, CloudStack's error text, and the steps so far; built once per row.
    var result = cell(row, 4);
    if (!result.querySelector("[data-action-steps]")) {
      var badge = document.createElement("span");
      badge.setAttribute("data-action-badge", "");
      var error = document.createElement("pre");
      error.className = "mono evidence";
      error.setAttribute("data-action-error", "");
      error.hidden = true;
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      var list = document.createElement("ol");
      list.className = "action-steps";
      list.setAttribute("data-action-steps", "");
      details.appendChild(summary);
      details.appendChild(list);
      result.replaceChildren(badge, error, details);
    }
    return {
      badge: result.querySelector("[data-action-badge]"),
      error: result.querySelector("[data-action-error]"),
      details: result.querySelector("details"),
      summary: result.querySelector("summary"),
      list: result.querySelector("[data-action-steps]")
    };
  }

  function showStatus(row, status, text) {
    var look = STATUS_LOOK[status] || ["? " + status, "tone-unknown"];
    var parts = statusParts(row);
    row.setAttribute("data-status", status);
    parts.badge.className = "badge " + look[1];
    parts.badge.textContent = text || look[0];
    parts.details.open = status === "pending" || status === "running";
  }

  function addStep(row, step) {
    var parts = statusParts(row);
    parts.list.appendChild(stepItem(step));
    parts.summary.textContent = "steps (" + parts.list.children.length + ")";
  }

  function showError(row, text) {
    var parts = statusParts(row);
    parts.error.textContent = text || "";
    parts.error.hidden = !text;
  }

  function stepItem(step) {
    var item = document.createElement("li");
    item.setAttribute("data-step", step.step);
    item.setAttribute("data-step-status", step.status);
    var when = document.createElement("span");
    when.className = "mono muted";
    when.textContent = (step.at || "").slice(11, 19) + " ";
    item.appendChild(when);
    item.appendChild(document.createTextNode(step.step + ": " + step.message));
    return item;
  }

  function showOutcome(row, run) {
    var job = run.job || {};
    cell(row, 5).textContent = (job.id || "—") + (job.id && job.status ? " " + job.status : "");
    cell(row, 6).textContent = run.final_state || "—";
    cell(row, 7).textContent = run.evidence_collection_id ? "collection " + run.evidence_collection_id + " (kept)" : "—";
  }

  function upsertRun(run) {
    var row = rowFor(run.action_id);
    if (run.created) {
      cell(row, 0).textContent = run.created.replace("T", " ").slice(0, 19) + " UTC";
    } else if (!cell(row, 0).textContent) {
      cell(row, 0).textContent = "just now";
    }
    if (run.username) { cell(row, 1).textContent = run.username; }
    if (run.action) {
      cell(row, 2).textContent = run.action + (run.target ? " (" + run.scope + " " + run.target + ")" : "");
    } else if (run.label && !cell(row, 2).textContent) {
      cell(row, 2).textContent = run.label;
    }
    if (run.reason) { cell(row, 3).textContent = run.reason; }
    var parts = statusParts(row);
    if (run.progress && run.progress.length) {
      parts.list.replaceChildren();
      run.progress.forEach(function (step) { addStep(row, step); });
    }
    parts.summary.textContent = "steps (" + parts.list.children.length + ")";
    showStatus(row, run.status);
    showError(row, run.error);
    showOutcome(row, run);
  }

  function onState(state) {
    (state.runs || []).slice().reverse().forEach(upsertRun);
  }

  function onProgress(event) {
    var row = rowFor(event.action_id);
    if (!cell(row, 2).textContent) { cell(row, 2).textContent = event.action; }
    addStep(row, event);
    showStatus(row, "running", "◷ running: " + event.step);
    if (event.job_id) { cell(row, 5).textContent = event.job_id; }
  }

  function onFinished(event) {
    var row = rowFor(event.action_id);
    showStatus(row, event.status);
    showError(row, event.error);
    showOutcome(row, event);
    say(message, (event.status === "succeeded" ? "● " : "▲ ") + event.action + " " + event.status +
      (event.job && event.job.id ? " (job " + event.job.id + ")" : "") +
      (event.final_state ? "; router now " + event.final_state : "") +
      (event.error ? ": " + event.error : "") + ". Reload the page for the new findings.");
  }

  /* --- CloudStack's record (the evidence panel) ----------------------------------------------- */

  function evidencePanel() { return document.getElementById("failure-evidence"); }

  function refreshEvidence() {
    var current = evidencePanel();
    if (!current) { return; }
    fetch(current.getAttribute("data-evidence-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        // Our own server-rendered, autoescaped partial.
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.querySelector("#failure-evidence");
        if (fresh && evidencePanel()) { evidencePanel().replaceWith(fresh); }
      });
  }

  document.addEventListener("submit", function (submit) {
    var form = submit.target.closest("[data-evidence-form]");
    if (!form) { return; }
    submit.preventDefault();
    var button = form.querySelector("[data-evidence-button]");
    var note = document.querySelector("[data-evidence-message]");
    button.disabled = true;
    button.textContent = "◷ Reading…";
    fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(form), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (!answer.ok) {
        say(note, "✖ " + (answer.body.error || "The request was refused."));
        button.disabled = false;
        button.textContent = "↻ Read CloudStack's record now";
        return;
      }
      say(note, "◷ Reading CloudStack's record (events, async jobs, host, template, network)…");
    }, function () {
      say(note, "✖ The console did not answer; try again.");
      button.disabled = false;
    });
  });

  function onEvidence(event) {
    refreshEvidence();
    if (event.status === "failed" || event.status === "errored") {
      say(message, "▲ CloudStack's record could not be read: " + (event.error || event.status));
    }
  }

  /* --- The socket -------------------------------------------------------------------------------- */

  var handlers = {
    "actions.state": onState,
    "action.progress": onProgress,
    "action.finished": onFinished,
    "evidence.gathered": onEvidence
  };

  function connect() {
    retryTimer = null;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + panel.getAttribute("data-socket-path"));
    socket.onopen = function () {
      attempts = 0;
      setIndicator("● actions: connected", "tone-ok");
    };
    socket.onmessage = function (incoming) {
      var event;
      try { event = JSON.parse(incoming.data); } catch (e) { return; }
      var handler = handlers[event.type];
      if (handler) { handler(event); }
    };
    socket.onclose = function (close) {
      if (close.code === CLOSE_NOT_SIGNED_IN) {
        setIndicator("✖ actions: signed out, reload the page to sign in", "tone-crit");
        return;
      }
      if (close.code === CLOSE_FORBIDDEN) {
        setIndicator("✖ actions: operators only", "tone-crit");
        return;
      }
      if (close.code === CLOSE_NO_SUCH_ROUTER) {
        setIndicator("✖ actions: the console no longer knows this router", "tone-crit");
        return;
      }
      var delay = Math.min(MAX_BACKOFF_S, Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      setIndicator("◷ actions: reconnecting in " + Math.ceil(delay) + " s…", "tone-warn");
      retryTimer = window.setTimeout(connect, delay * 1000);
    };
  }

  window.addEventListener("pagehide", function () {
    if (retryTimer) { window.clearTimeout(retryTimer); }
  });
  connect();
})();
