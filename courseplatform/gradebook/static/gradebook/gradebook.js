/* Staff gradebook: find a student (filters rows by name or username) and sort by any column
   (click a heading; numbers sort numerically, "–" and empty cells last). */
(function () {
  "use strict";
  function value(cell, numeric) {
    var text = (cell ? cell.innerText : "").trim().split("\n")[0];
    if (!numeric) return text.toLowerCase();
    var n = parseFloat(text.replace(",", "."));
    return isNaN(n) ? null : n;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("gradebook");
    if (!table) return;
    var body = table.tBodies[0];
    var search = document.getElementById("gradebook-search");
    if (search) search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      Array.prototype.forEach.call(body.rows, function (row) {
        row.hidden = q !== "" && row.cells[0].innerText.toLowerCase().indexOf(q) === -1;
      });
    });
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, index) {
      if (!th.dataset.sort) return;
      th.tabIndex = 0;
      function sort() {
        var numeric = th.dataset.sort === "number";
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.dataset.user; });
        rows.sort(function (a, b) {
          var x = value(a.cells[index], numeric), y = value(b.cells[index], numeric);
          if (x === null && y === null) return 0;
          if (x === null) return 1;
          if (y === null) return -1;
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", function (e) { if (e.target.tagName !== "A") sort(); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  });
})();
