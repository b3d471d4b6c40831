/* Taking attendance: "All present" marks every student not marked yet as present. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var button = document.getElementById("all-present");
  if (!button) return;
  button.addEventListener("click", function () {
    document.querySelectorAll("table.attendance-form tbody tr").forEach(function (tr) {
      if (!tr.querySelector("input[type=radio]:checked")) {
        var present = tr.querySelector("input[value=present]");
        if (present) present.checked = true;
      }
    });
  });
});
