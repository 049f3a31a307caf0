/* Theme: dark by default for wall screens, light one click away, remembered in localStorage.
   Loaded without defer in <head> so the attribute is set before the first paint. */
(function () {
  "use strict";
  var KEY = "vrconsole-theme";
  var root = document.documentElement;
  var saved = null;
  try { saved = window.localStorage.getItem(KEY); } catch (e) { saved = null; }
  root.setAttribute("data-theme", saved === "light" ? "light" : "dark");

  function label() {
    var name = document.getElementById("theme-name");
    if (name) { name.textContent = root.getAttribute("data-theme") === "light" ? "dark theme" : "light theme"; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    label();
    if (!button) { return; }
    button.addEventListener("click", function () {
      var next = root.getAttribute("data-theme") === "light" ? "dark" : "light";
      root.setAttribute("data-theme", next);
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode: the choice lasts this page only */ }
      label();
    });
  });
})();
