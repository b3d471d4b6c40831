/* Quizzes: math rendering (static/js/math.js), the countdown (server time is the truth), autosave state. */
(function () {
  "use strict";
  function renderMath(root) {
    if (window.cpRenderMath) window.cpRenderMath(root);  // static/js/math.js
  }

  function fmt(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m));
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function startCountdown() {
    var box = document.getElementById("countdown");
    if (!box) return;
    var value = document.getElementById("countdown-value");
    // The server sent how many seconds are left; count from our own clock's "now" so that a
    // wrong clock on the student's machine does not matter.
    var end = Date.now() + parseInt(box.dataset.secondsLeft, 10) * 1000;
    var submitted = false;
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      value.textContent = fmt(left);
      box.classList.toggle("warn", left <= 120 && left > 30);
      box.classList.toggle("bad", left <= 30);
      if (left === 0 && !submitted) {
        submitted = true;
        value.textContent = "time is up";
        var form = document.getElementById("quiz-form");
        // The server closes the attempt with the answers saved so far.
        if (form) { form.querySelectorAll("input, textarea").forEach(function (el) { el.readOnly = true; }); form.submit(); }
        return;
      }
      window.setTimeout(tick, 250);
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderMath(document.body);
    startCountdown();
    document.body.addEventListener("htmx:beforeRequest", function (evt) {
      var target = evt.detail.target;
      if (target && target.classList.contains("save-slot")) {
        target.innerHTML = '<span class="save-status saving">Saving…</span>';
      }
    });
    // Autosave that did not reach the server (no connection, a server error, a timeout) is shown
    // and sent again by itself, with a growing pause, until one succeeds or the answer changes.
    var retries = new WeakMap();
    function saveFailed(evt) {
      var target = evt.detail.target, elt = evt.detail.elt;
      if (!target || !target.classList.contains("save-slot") || !elt || !elt.hasAttribute("data-autosave")) return;
      var n = (retries.get(elt) || 0) + 1;
      retries.set(elt, n);
      var wait = Math.min(30, 2 * n);
      var status = evt.detail.xhr && evt.detail.xhr.status;
      target.innerHTML = "";
      var span = document.createElement("span");
      span.className = "save-status bad";
      span.setAttribute("role", "status");
      span.textContent = "Not saved (" + (status ? "server error " + status : "no connection") + "): trying again in "
        + wait + " s; your answer is also sent when you submit.";
      target.appendChild(span);
      window.setTimeout(function () {
        if (document.body.contains(elt) && retries.get(elt) === n) htmx.trigger(elt, "change");
      }, wait * 1000);
    }
    ["htmx:sendError", "htmx:responseError", "htmx:timeout"].forEach(function (name) {
      document.body.addEventListener(name, saveFailed);
    });
    document.body.addEventListener("htmx:afterRequest", function (evt) {
      if (evt.detail.successful && evt.detail.elt && evt.detail.elt.hasAttribute("data-autosave")) retries.delete(evt.detail.elt);
    });
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      if (evt.detail.target && evt.detail.target.id === "result-body") renderMath(evt.detail.target);
    });
  });
})();
