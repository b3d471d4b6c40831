/* The reader's own time next to the course's (issue 28). Times are rendered in the course's zone,
   named ("23:59 CET"), inside <time datetime="…+01:00" data-local-time>; where the browser's
   zone has another offset at that instant, "(your time: …)" follows. A static file: the CSP
   allows no inline script. Runs again after htmx swaps. */
(function () {
  "use strict";
  function offsetOf(iso) {
    var m = /([+-])(\d\d):?(\d\d)$/.exec(iso);
    if (!m) return null;
    return (m[1] === "-" ? -1 : 1) * (parseInt(m[2], 10) * 60 + parseInt(m[3], 10));
  }
  function run(root) {
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(undefined, {
        weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
      });
    } catch (e) { return; }
    var nodes = (root || document).querySelectorAll("time[data-local-time]:not([data-local-done])");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      el.setAttribute("data-local-done", "");
      var iso = el.getAttribute("datetime") || "";
      var when = new Date(iso);
      var course = offsetOf(iso);
      if (isNaN(when.getTime()) || course === null || -when.getTimezoneOffset() === course) continue;
      var span = document.createElement("span");
      span.className = "local-time";
      span.textContent = " (your time: " + fmt.format(when) + ")";
      el.parentNode.insertBefore(span, el.nextSibling);
    }
  }
  document.addEventListener("DOMContentLoaded", function () { run(document); });
  document.addEventListener("htmx:afterSettle", function (evt) { run(evt.target); });
})();
