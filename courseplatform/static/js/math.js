/* KaTeX auto-render with the delimiters the server-side renderer keeps intact
   (courseplatform/courses/markdown.py). window.cpRenderMath(root) renders one subtree;
   elements marked data-math are rendered when the page loads. */
(function () {
  "use strict";
  var MATH = {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
      { left: "$", right: "$", display: false }
    ],
    throwOnError: false,
    ignoredTags: ["script", "noscript", "style", "textarea", "pre", "code", "input"]
  };
  window.cpRenderMath = function (root) {
    if (window.renderMathInElement) {
      window.renderMathInElement(root || document.body, MATH);
    }
  };
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-math]").forEach(function (el) { window.cpRenderMath(el); });
  });
})();
