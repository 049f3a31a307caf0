/* Fleet page: reload every N seconds (the page sits on a wall), pausable and remembered;
   submit the filter form as soon as a dropdown changes. */
(function () {
  "use strict";
  var KEY = "vrconsole-fleet-refresh-paused";
  var box = document.getElementById("refresh");
  var toggle = document.getElementById("refresh-toggle");
  var status = document.getElementById("refresh-status");
  var seconds = box ? parseInt(box.getAttribute("data-refresh-seconds"), 10) || 30 : 30;
  var timer = null;

  function paused() {
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }

  function schedule() {
    if (timer) { window.clearTimeout(timer); timer = null; }
    if (paused()) {
      if (toggle) { toggle.textContent = "resume auto-refresh (paused)"; }
      if (box) { box.classList.add("paused"); }
      return;
    }
    if (toggle) { toggle.textContent = "pause auto-refresh"; }
    if (box) { box.classList.remove("paused"); }
    timer = window.setTimeout(function () {
      // Do not yank the page away from someone typing a search.
      var active = document.activeElement;
      if (active && (active.tagName === "INPUT" || active.tagName === "SELECT") && active.value !== active.defaultValue) {
        schedule();
        return;
      }
      window.location.reload();
    }, seconds * 1000);
  }

  if (toggle) {
    toggle.addEventListener("click", function () {
      try { window.localStorage.setItem(KEY, paused() ? "0" : "1"); } catch (e) { /* ignore: stays as is */ }
      schedule();
    });
  }
  if (status && paused()) { status.classList.add("stale"); }
  schedule();

  var form = document.getElementById("fleet-filters");
  if (form) {
    Array.prototype.forEach.call(form.querySelectorAll("select"), function (select) {
      select.addEventListener("change", function () { form.submit(); });
    });
  }
})();
