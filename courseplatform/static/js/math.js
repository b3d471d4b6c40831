/* Typesets the formulas the server-side renderer marked (courseplatform/core/markdown.py):
   <span class="math inline">$...$</span>, <span|div class="math block">$$...$$</span|div>.
   Only those elements are typeset, so a "$" in ordinary text never becomes math.
   window.cpRenderMath(root) renders one subtree; the whole page is rendered when it loads. */
(function () {
  "use strict";
  function strip(tex) {
    tex = tex.trim();
    if (tex.startsWith("$$") && tex.endsWith("$$") && tex.length >= 4) return { tex: tex.slice(2, -2), display: true };
    if (tex.startsWith("$") && tex.endsWith("$") && tex.length >= 2) return { tex: tex.slice(1, -1), display: false };
    return { tex: tex, display: false };
  }
  window.cpRenderMath = function (root) {
    if (!window.katex) return;
    (root || document.body).querySelectorAll(".math:not([data-typeset])").forEach(function (el) {
      var m = strip(el.textContent);
      el.setAttribute("data-typeset", "");
      el.setAttribute("data-tex", m.tex);
      window.katex.render(m.tex, el, { displayMode: m.display, throwOnError: false, output: "htmlAndMathml" });
      // A formula that names a form control (a quiz choice that is only math): give it a text name,
      // the TeX, so the radio button or checkbox is not announced without a label.
      if (el.closest("label")) {
        el.setAttribute("role", "math");
        el.setAttribute("aria-label", m.tex.trim());
      }
    });
  };
  document.addEventListener("DOMContentLoaded", function () { window.cpRenderMath(document.body); });
  document.addEventListener("htmx:afterSwap", function (evt) { window.cpRenderMath(evt.detail.target); });
})();
