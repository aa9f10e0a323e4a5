// The threshold form: show the parameters of the chosen action type and the fields of the chosen source.
(function () {
  "use strict";
  function showParams(slot) {
    var type = slot.querySelector(".action-type").value;
    slot.querySelectorAll(".action-params").forEach(function (div) {
      div.hidden = div.getAttribute("data-action") !== type;
    });
    var when = slot.querySelector(".when");
    if (when) when.hidden = !type;
  }
  function showSource(form) {
    var select = form.querySelector("#source");
    if (!select) return;
    form.querySelectorAll("fieldset[data-source]").forEach(function (fs) {
      fs.hidden = fs.getAttribute("data-source") !== select.value;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("threshold-form");
    if (!form) return;
    form.querySelectorAll(".action-slot").forEach(function (slot) {
      showParams(slot);
      slot.querySelector(".action-type").addEventListener("change", function () { showParams(slot); });
    });
    showSource(form);
    var source = form.querySelector("#source");
    if (source) source.addEventListener("change", function () { showSource(form); });
  });
})();
