/* Router page: one-click copy of ids, IPs and the ssh command (buttons carry data-copy).
   navigator.clipboard needs a secure context; plain-http consoles fall back to execCommand. */
(function () {
  "use strict";

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function flash(button, ok) {
    var before = button.textContent;
    button.textContent = ok ? "✓ copied" : "✖ copy failed";
    button.classList.add(ok ? "copied" : "copy-failed");
    window.setTimeout(function () {
      button.textContent = before;
      button.classList.remove("copied", "copy-failed");
    }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var text = button.getAttribute("data-copy");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { flash(button, true); },
        function () { flash(button, fallbackCopy(text)); }
      );
    } else {
      flash(button, fallbackCopy(text));
    }
  });
})();
