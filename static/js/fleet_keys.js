/* Fleet page keyboard: "/" focuses the search, j / k move through the rows, Enter opens the
   router, "?" lists the keys, Esc leaves the search or closes the list. The current row is
   remembered by router id, so a row the live wall re-renders stays current. Keys typed into a
   field are the field's own. */
(function () {
  "use strict";

  var body = document.querySelector("[data-fleet-rows]");
  var search = document.getElementById("fleet-search");
  var help = document.getElementById("keys-help");
  if (!body) { return; }
  var currentId = null;

  function rows() {
    return Array.prototype.slice.call(body.querySelectorAll("tr[data-router-id]"));
  }

  function mark() {
    rows().forEach(function (row) {
      var on = row.getAttribute("data-router-id") === currentId;
      row.classList.toggle("kbd-current", on);
      if (on) { row.setAttribute("aria-current", "true"); } else { row.removeAttribute("aria-current"); }
    });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.findIndex(function (row) { return row.getAttribute("data-router-id") === currentId; });
    index = index === -1 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
    currentId = all[index].getAttribute("data-router-id");
    mark();
    all[index].scrollIntoView({ block: "nearest" });
  }

  function open() {
    var row = rows().find(function (r) { return r.getAttribute("data-router-id") === currentId; });
    var link = row ? row.querySelector("a.router-link") : null;
    if (link) { window.location.assign(link.href); }
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") {
      if (help && help.open) { help.close(); return; }
      if (typing(event.target)) { event.target.blur(); }
      return;
    }
    if (typing(event.target)) { return; }
    if (help && help.open && event.key !== "?") { return; }
    if (event.key === "/") {
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (event.key === "j") {
      move(1);
    } else if (event.key === "k") {
      move(-1);
    } else if (event.key === "Enter" && currentId !== null) {
      event.preventDefault();
      open();
    } else if (event.key === "?") {
      if (!help) { return; }
      if (help.open) { help.close(); } else { help.showModal(); }
    }
  });

  // The live wall swaps rows in place: keep the current one marked.
  new MutationObserver(mark).observe(body, { childList: true });
})();
