// Live quizzes: one socket per page (phone, control, projector) that reconnects by itself (backoff
// 250 ms doubling to 3 s, with jitter) and is sent the current state on every (re)connect. A phone
// sends its answer on the socket and waits for the "received" reply (stored in the database
// first); with no open socket, or no reply within 5 s, it POSTs the same answer (a repeat is
// recognised). The control page sends the instructor's steps the same way (a "stepped" reply once
// committed; else the POST, whose version check refuses a step that had already arrived). A socket
// closed with 4401 (the login session is gone) is not reopened: the page says "logged out".
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var role = root.dataset.role;
  var $ = function (sel) { return root.querySelector(sel); };
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var state = null, counts = null, answered = {}, countdownTimer = null;

  function wsUrl() {
    var base = root.dataset.pushBase;
    if (!base) base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
    return base.replace(/\/$/, "") + root.dataset.wsPath;
  }

  // ------------------------------------------------------------------ the socket
  var socket = null, retry = 0, pending = {}, rids = 0, loggedOut = false;
  function connect() {
    var s = new WebSocket(wsUrl());
    socket = s;
    s.onopen = function () { retry = 0; setConn(true); };
    s.onmessage = function (ev) {
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "state") onState(msg);
      else if (msg.type === "counts") onCounts(msg);
      else if ((msg.type === "answered" || msg.type === "stepped") && pending[msg.rid]) pending[msg.rid](msg);
    };
    s.onclose = function (ev) {
      if (ev.code === 4401) loggedOut = true;
      setConn(false);
      Object.keys(pending).forEach(function (rid) { pending[rid](null); });  // unanswered: POST them
      if (loggedOut) return;  // reconnecting would be refused again and again
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, Math.min(250 * Math.pow(2, retry - 1), 3000) + Math.random() * 250);
    };
  }
  function setConn(ok) {
    var el = $(".live-conn");
    el.dataset.connected = ok ? "1" : "0";
    el.textContent = ok ? "Live" : loggedOut ? "Logged out: reload the page to log in again." : "Reconnecting…";
    el.classList.toggle("is-off", !ok);
  }
  document.addEventListener("visibilitychange", function () {  // a phone waking up: resync at once
    if (document.visibilityState === "visible" && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({type: "resync"}));
    }
  });

  var PHASES = {lobby: "Waiting for the first question", open: "Question open", closed: "Closed",
                revealed: "Answer shown", ended: "The live quiz has ended. Thank you!"};

  function onState(s) {
    if (state && s.version < state.version && s.live === state.live) return;  // an older message
    if (s.fresh && state && state.question && s.question && state.question.id === s.question.id) {
      s.answered = state.answered;  // a broadcast carries nothing personal: keep what we know
    }
    state = s;
    if (s.answered !== undefined && s.answered && s.question) answered[s.question.id] = s.answered;
    if (role !== "phone" && s.answered !== undefined && typeof s.answered === "number") {
      counts = {question: s.question ? s.question.id : null, answered: s.answered, joined: s.joined};
    }
    render();
  }
  function onCounts(c) {
    var current = state && state.question ? state.question.id : null;
    if (c.question !== current) return;  // a count of another question (an old message)
    if (counts && counts.question === c.question) {  // counts only grow: a late message never lowers them
      c = {question: c.question, answered: Math.max(c.answered, counts.answered), joined: Math.max(c.joined, counts.joined)};
    }
    counts = c;
    renderCounts();
  }

  function renderCounts() {
    if (!counts) return;
    var a = $("[data-testid=answered]"), j = $("[data-testid=joined]");
    if (a) a.textContent = String(counts.answered);
    if (j) j.textContent = String(counts.joined);
  }

  function startCountdown(s) {
    clearInterval(countdownTimer);
    var el = $(".live-countdown");
    if (!el) return;
    if (s.phase !== "open" || s.closes_in === null || s.closes_in === undefined) { el.textContent = ""; return; }
    var end = Date.now() + s.closes_in * 1000;
    var tick = function () {
      var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      el.textContent = left > 0 ? left + " s left" : "Time is up";
      if (left <= 0) {
        clearInterval(countdownTimer);
        if (role === "control") step("close");
        if (role === "phone") setFormEnabled(false);
      }
    };
    tick();
    countdownTimer = setInterval(tick, 250);
  }

  function questionHtml(q, withLetters) {
    var html = '<div class="q-text">' + q.text_html + "</div>";
    if (withLetters && q.choices) {
      html += '<ol class="q-choices">' + q.choices.map(function (c) {
        return '<li data-choice="' + c.id + '"><span class="letter">' + c.letter + "</span> " + c.html + "</li>";
      }).join("") + "</ol>";
    } else if (withLetters && q.kind === "truefalse") {
      html += '<ol class="q-choices"><li><span class="letter">T</span> True</li><li><span class="letter">F</span> False</li></ol>';
    }
    return html;
  }

  function esc(t) { var d = document.createElement("div"); d.textContent = t; return d.innerHTML; }

  function distHtml(d, revealed) {
    if (!d) return "";
    var out = '<p class="dist-n">' + d.n + " answer" + (d.n === 1 ? "" : "s");
    if (revealed && d.correct_share !== null) out += " · " + Math.round(d.correct_share * 100) + "% correct";
    out += "</p>";
    var bars = d.bars || (d.histogram && d.histogram.bins && d.histogram.bins.map(function (b) {
      return {label_html: esc(b.from + " – " + b.to), count: b.count, correct: b.correct};
    }));
    if (bars && bars.length) {
      var max = Math.max.apply(null, bars.map(function (b) { return b.count; }).concat([1]));
      out += '<ul class="bars">' + bars.map(function (b) {
        return '<li class="' + (revealed && b.correct ? "is-correct" : "") + '"><span class="bar-label">' + b.label_html +
          '</span><span class="bar"><span class="bar-fill" data-w="' + Math.round(100 * b.count / max) +
          '"></span></span><span class="bar-count">' + b.count + "</span></li>";
      }).join("") + "</ul>";
      if (d.histogram && revealed && d.histogram.correct.length) {
        out += '<p class="muted">Correct range: ' + d.histogram.correct.map(function (r) { return esc(r[0] + " to " + r[1]); }).join(", ") + "</p>";
      }
    }
    if (d.top) {
      out += '<ol class="top-answers">' + d.top.map(function (t) { return "<li>" + t.text + ' <span class="muted">(' + t.count + ")</span></li>"; }).join("") + "</ol>";
    }
    if (d.personal) out += '<p class="muted">Each student had their own numbers.</p>';
    return out;
  }
  function sizeBars() {  // widths without inline style attributes (CSP): the CSSOM is allowed
    root.querySelectorAll(".bar-fill").forEach(function (el) { el.style.width = el.dataset.w + "%"; });
  }

  // ------------------------------------------------------------------ screens
  function renderScreen() {
    var s = state;
    $("[data-testid=phase]").textContent = PHASES[s.phase] || s.phase;
    var pos = $("[data-testid=position]");
    if (pos) pos.textContent = s.position >= 0 ? String(s.position + 1) : "–";
    var qEl = $("[data-testid=question]");
    qEl.innerHTML = s.question ? questionHtml(s.question, true) : "";
    if (s.question && s.question.personal) qEl.insertAdjacentHTML("beforeend", '<p class="muted">Numbers drawn per student (an example is shown).</p>');
    var dEl = $("[data-testid=dist]");
    var revealed = s.phase === "revealed";
    dEl.innerHTML = (s.distribution ? distHtml(s.distribution, revealed || role === "control") : "") +
      (revealed && s.correct_html ? '<p class="correct">Correct: ' + s.correct_html + "</p>" : "");
    if (revealed && s.correct_ids && s.question) {
      s.correct_ids.forEach(function (id) {
        var li = qEl.querySelector('[data-choice="' + id + '"]'); if (li) li.classList.add("is-correct");
      });
    }
    sizeBars();
    if (role === "control") {
      var v = root.querySelector("input[name=version]"); if (v) v.value = s.version;
      var can = {next: (s.phase === "lobby" || s.phase === "closed" || s.phase === "revealed") && s.position + 1 < s.total,
                 close: s.phase === "open", "countdown-30": s.phase === "open" && s.closes_in === null,
                 reveal: s.phase === "closed", end: s.phase !== "ended"};
      Object.keys(can).forEach(function (k) { var b = $("[data-testid=" + k + "]"); if (b) b.disabled = !can[k]; });
    }
    startCountdown(s);
    renderCounts();
  }

  function post(body) {
    return fetch(root.dataset.actionUrl, {method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}})
      .then(function (r) { return r.json(); });
  }
  function step(action, seconds) {  // on the socket when it is open, else (or without a reply) by POST
    var body = new URLSearchParams();
    body.set("action", action); body.set("version", state ? state.version : "");
    if (seconds) body.set("seconds", seconds);
    var sent;
    if (!socket || socket.readyState !== WebSocket.OPEN) sent = post(body);
    else sent = new Promise(function (resolve) {
      var msg = {type: "step", rid: "s" + (++rids), action: action, version: body.get("version"),
                 seconds: seconds || null};
      var timer = setTimeout(function () { done(null); }, 5000);
      function done(reply) {
        clearTimeout(timer);
        delete pending[msg.rid];
        resolve(reply || post(body));
      }
      pending[msg.rid] = done;
      socket.send(JSON.stringify(msg));
    });
    return sent.then(function (j) {
        $("[data-testid=message]").textContent = j.ok ? "" : j.message;
        if (j.state) onState(j.state);
      })
      .catch(function () { $("[data-testid=message]").textContent = "Could not reach the server; try again."; });
  }
  if (role === "control") {
    root.querySelector(".live-actions").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var b = ev.submitter;
      if (!b) return;
      if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
      step(b.value, b.dataset.seconds);
    });
  }

  // ------------------------------------------------------------------ phone
  var form = role === "phone" ? root.querySelector(".live-answer") : null;
  var shownQuestion = null;
  function setFormEnabled(on) {
    form.querySelectorAll("input, textarea, button").forEach(function (el) { el.disabled = !on; });
  }
  function inputsHtml(q) {
    if (q.kind === "single" || q.kind === "multiple") {
      var t = q.kind === "single" ? "radio" : "checkbox";
      return q.choices.map(function (c) {
        return '<label class="opt"><input type="' + t + '" name="choice" value="' + esc(c.id) + '"> <span class="letter">' +
          c.letter + "</span> " + c.html + "</label>";
      }).join("");
    }
    if (q.kind === "truefalse") {
      return '<label class="opt"><input type="radio" name="value" value="true"> True</label>' +
             '<label class="opt"><input type="radio" name="value" value="false"> False</label>';
    }
    if (q.kind === "numeric") {
      return '<label class="opt-text">Your number' + (q.unit ? " (" + esc(q.unit) + ")" : "") +
        ' <input name="value" inputmode="decimal" autocomplete="off" maxlength="64"></label>';
    }
    return '<label class="opt-text">Your answer <input name="text" autocomplete="off" maxlength="500"></label>';
  }
  function renderPhone() {
    var s = state;
    $("[data-testid=phase]").textContent = PHASES[s.phase] || s.phase;
    var q = s.question;
    var received = $("[data-testid=received]");
    if (!q || s.phase === "ended") {
      form.hidden = true; shownQuestion = null;
      received.textContent = "";
      $("[data-testid=reveal]").textContent = "";
      startCountdown(s);
      return;
    }
    form.hidden = false;
    if (shownQuestion !== q.id) {
      shownQuestion = q.id;
      form.querySelector("input[name=question]").value = q.id;
      $("[data-testid=question]").innerHTML = '<p class="muted">Question ' + (q.position + 1) + " of " + s.total + "</p>" +
        '<div class="q-text">' + q.text_html + "</div>";
      root.querySelector(".live-inputs").innerHTML = inputsHtml(q);
      received.textContent = "";
      $("[data-testid=reveal]").textContent = "";
    }
    var mine = answered[q.id];
    if (mine) received.textContent = "Answer received: " + mine.text;
    setFormEnabled(s.phase === "open" && !mine);
    var rev = $("[data-testid=reveal]");
    if (s.phase === "revealed") {
      if (s.fresh) { fetchMe(); } else {
        var html = s.correct_html ? "Correct answer: " + s.correct_html : "";
        if (mine && mine.correct !== undefined) html += mine.correct ? " · <strong>You were right.</strong>" : " · Not quite.";
        else if (!mine) html += " · You did not answer.";
        rev.innerHTML = html;
      }
    } else { rev.textContent = ""; }
    startCountdown(s);
  }
  function fetchMe() {
    fetch(root.dataset.meUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); }).then(function (s) { s.fresh = false; onState(s); })
      .catch(function () {});
  }
  function postAnswer(body) {
    return fetch(root.dataset.answerUrl, {method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); });
  }
  function sendAnswer(body) {  // over the socket when it is open, else (or without a reply) by POST
    if (!socket || socket.readyState !== WebSocket.OPEN) return postAnswer(body);
    var msg = {type: "answer", rid: "a" + (++rids), question: body.get("question"),
               choice: body.getAll("choice"), value: body.getAll("value"), text: body.getAll("text")};
    return new Promise(function (resolve) {
      var timer = setTimeout(function () { done(null); }, 5000);
      function done(reply) {
        clearTimeout(timer);
        delete pending[msg.rid];
        resolve(reply ? Promise.resolve([reply.status || 200, reply]) : postAnswer(body));
      }
      pending[msg.rid] = done;
      socket.send(JSON.stringify(msg));
    });
  }
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var received = $("[data-testid=received]");
      var body = new URLSearchParams(new FormData(form));
      received.textContent = "Sending…";
      setFormEnabled(false);
      sendAnswer(body)
        .then(function (res) {
          var j = res[1];
          if (j.ok) {
            var qid = j.question;
            answered[qid] = answered[qid] || {text: j.text || "sent"};
            if (!j.text) fetchMe();
            received.textContent = j.message;
            received.classList.remove("is-error");
          } else {
            received.textContent = j.message;
            received.classList.add("is-error");
            if (j.state) { shownQuestion = (j.state.question && state && state.question && j.state.question.id === state.question.id) ? shownQuestion : null; onState(j.state); }
            received.textContent = j.message;
            if (state && state.phase === "open" && !(state.question && answered[state.question.id])) setFormEnabled(true);
          }
        })
        .catch(function () {
          received.textContent = "Not sent: no connection. Try again.";
          received.classList.add("is-error");
          setFormEnabled(true);
        });
    });
  }

  function render() {
    if (role === "phone") renderPhone(); else renderScreen();
    if (window.cpRenderMath) window.cpRenderMath(root);
  }
  var initial = document.getElementById("live-initial");
  if (initial) { try { onState(JSON.parse(initial.textContent)); } catch (e) { /* the socket sends it too */ } }
  connect();
})();
