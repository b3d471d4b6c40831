// The code editor of the site (CodeMirror 6, Python mode), bundled by esbuild into
// courseplatform/static/vendor/codemirror/editor.js (`npm run build` here; the bundle is committed,
// no CDN). Every <textarea data-code-editor> becomes an editor; the textarea stays in the form
// (hidden) and receives every change with an "input" event, so autosave and submit work unchanged.
// Tab indents; Escape then Tab leaves the editor (CodeMirror's focus-trap escape).
import { EditorView, basicSetup } from "codemirror";
import { python } from "@codemirror/lang-python";
import { indentUnit } from "@codemirror/language";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";

// The page's Content-Security-Policy nonce (base.html): CodeMirror's <style> element carries it.
const nonce = document.querySelector("meta[name=csp-nonce]")?.content || "";

function enhance(textarea) {
  if (textarea.dataset.editorReady) return;
  textarea.dataset.editorReady = "1";
  const label = textarea.getAttribute("aria-label") || "Python code editor";
  const view = new EditorView({
    doc: textarea.value,
    extensions: [
      EditorView.cspNonce.of(nonce),
      basicSetup,
      python(),
      indentUnit.of("    "),
      keymap.of([indentWithTab]),
      EditorView.contentAttributes.of({ "aria-label": label }),
      EditorView.editable.of(!textarea.readOnly),
      EditorView.updateListener.of((update) => {
        if (!update.docChanged) return;
        textarea.value = update.state.doc.toString();
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
      }),
    ],
  });
  view.dom.classList.add("code-editor");
  textarea.after(view.dom);
  textarea.hidden = true;
  textarea.cpEditor = view;
}

function enhanceAll(root) {
  (root || document).querySelectorAll("textarea[data-code-editor]").forEach(enhance);
}

document.addEventListener("DOMContentLoaded", () => enhanceAll(document));
document.addEventListener("htmx:afterSwap", (evt) => enhanceAll(evt.detail.target));
window.cpCodeEditor = { enhance, enhanceAll };
