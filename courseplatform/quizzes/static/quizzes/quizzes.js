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
    document.body.addEventListener("htmx:sendError", function (evt) {
      var target = evt.detail.target;
      if (target && target.classList.contains("save-slot")) {
        target.innerHTML = '<span class="save-status bad">Not saved: no connection. It will be sent again with your next change or on submit.</span>';
      }
    });
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      if (evt.detail.target && evt.detail.target.id === "result-body") renderMath(evt.detail.target);
    });
  });
})();
