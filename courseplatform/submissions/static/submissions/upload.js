// Drag-and-drop onto the upload form: the dropped file goes into the normal file input.
(function () {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("id_file");
  const label = document.getElementById("dz-file");
  const form = document.getElementById("upload-form");
  if (!zone || !input) return;
  const show = () => { label.textContent = input.files.length ? input.files[0].name + " (" + Math.ceil(input.files[0].size / 1024) + " KB)" : ""; };
  ["dragenter", "dragover"].forEach((ev) => zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((ev) => zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => {
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
  });
  input.addEventListener("change", show);
  form.addEventListener("submit", () => { const b = document.getElementById("submit-btn"); if (b) { b.disabled = true; b.textContent = "Uploading…"; } });
})();
