/* Site-wide behaviour (loaded by base.html on every page):
   - --topbar-h: the sticky top bar's real height (it wraps on phones), so that other sticky
     elements (the quiz timer, table headers) stick just below it instead of sliding under it.
   - a region that scrolls sideways (a wide table, a long command) can be reached and scrolled
     with the keyboard: it gets tabindex=0 and a label (WCAG 2.1.1).
   - data-confirm="question" on a submit button or a form asks before submitting, and
     data-select-all on a read-only field selects its text on focus: no inline handlers, so that
     the Content-Security-Policy can forbid inline script on every page. */
(function () {
  "use strict";
  function measure() {
    var bar = document.querySelector(".topbar");
    var h = bar && getComputedStyle(bar).position === "sticky" ? bar.getBoundingClientRect().height : 0;
    document.documentElement.style.setProperty("--topbar-h", Math.ceil(h) + "px");
  }
  function keyboardScroll(root) {
    (root || document).querySelectorAll("pre, .scroll-x, .table-wrap, .card").forEach(function (el) {
      var ox = getComputedStyle(el).overflowX;
      if ((ox === "auto" || ox === "scroll") && el.scrollWidth > el.clientWidth && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        if (!el.hasAttribute("aria-label") && el.tagName !== "PRE") {
          var heading = el.querySelector("h1, h2, h3");
          el.setAttribute("aria-label", (heading ? heading.textContent.trim() + ", " : "") + "scrolls sideways");
        }
      }
    });
  }
  document.addEventListener("htmx:afterSwap", function (evt) { keyboardScroll(evt.detail.target); });
  // htmx: inheritance of hx-* attributes is off (base.html's htmx-config), so every element names
  // its own target. A poller (data-poll: hx-trigger="every …") keeps its timer when a request
  // fails; the failure is shown in the poller itself until an answer replaces it.
  function pollFailed(evt) {
    var elt = evt.detail && evt.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-poll")) return;
    var note = elt.querySelector(":scope > .poll-error");
    if (!note) {
      note = document.createElement("p");
      note.className = "poll-error flag warn small";
      note.setAttribute("role", "status");
      note.setAttribute("data-testid", "poll-error");
      elt.appendChild(note);
    }
    var status = evt.detail.xhr && evt.detail.xhr.status;
    note.textContent = (status ? "The server answered " + status : "No connection to the server")
      + " at " + new Date().toLocaleTimeString() + "; trying again…";
  }
  ["htmx:sendError", "htmx:responseError", "htmx:timeout"].forEach(function (name) {
    document.addEventListener(name, pollFailed);
  });
  document.addEventListener("htmx:targetError", function (evt) {
    // A page bug, never silent: htmx logs it too; the browser tests fail on it.
    window.console.error("htmx:targetError: no element matches hx-target " + (evt.detail && evt.detail.target));
  });
  document.addEventListener("submit", function (evt) {
    var asker = (evt.submitter && evt.submitter.closest("[data-confirm]")) || evt.target.closest("[data-confirm]");
    if (asker && !window.confirm(asker.getAttribute("data-confirm"))) evt.preventDefault();
  }, true);
  document.addEventListener("focusin", function (evt) {
    if (evt.target.matches && evt.target.matches("[data-select-all]")) evt.target.select();
  });
  document.addEventListener("click", function (evt) {
    if (evt.target.matches && evt.target.matches("[data-select-all]")) evt.target.select();
    // data-copy="#field": copy that field's value (a new API token) and say so on the button.
    var copier = evt.target.closest && evt.target.closest("[data-copy]");
    if (copier) {
      var field = document.querySelector(copier.getAttribute("data-copy"));
      if (!field) return;
      field.select();
      var done = function () { copier.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(done, function () {});
      else if (document.execCommand && document.execCommand("copy")) done();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    measure();
    keyboardScroll(document);
    var bar = document.querySelector(".topbar");
    if (bar && window.ResizeObserver) new ResizeObserver(measure).observe(bar);
    window.addEventListener("resize", measure);
  });
})();
