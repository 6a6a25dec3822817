// Review desk keys: j/k move between requests, a approve, t trim (focus the hours), r refuse (focus the
// reason; Enter then refuses), x select a pilot for bulk approval, / jump to the filters. Keys are ignored
// while typing in a field, so the form controls behave as usual.
(function () {
  "use strict";
  var desk = document.getElementById("desk");
  if (!desk) return;
  var current = null;

  function rows() { return Array.prototype.slice.call(desk.querySelectorAll("tbody tr.desk-row")); }
  function focusRow(row) {
    if (!row) return;
    if (current) current.classList.remove("current");
    current = row;
    row.classList.add("current");
    row.focus({ preventScroll: false });
  }
  function move(step) {
    var all = rows();
    var index = current ? all.indexOf(document.getElementById(current.id)) : -1;
    focusRow(all[Math.max(0, Math.min(all.length - 1, index + step))]);
  }
  function inRow(selector) { return current && document.getElementById(current.id) ? document.getElementById(current.id).querySelector(selector) : null; }

  desk.addEventListener("focusin", function (event) {
    var row = event.target.closest("tr.desk-row");
    if (row && row !== current) { if (current) current.classList.remove("current"); current = row; row.classList.add("current"); }
  });
  // Enter in a row's fields never approves by accident (the form's first button): in the hours field it
  // trims; in the reason field it does what t or r chose, and nothing otherwise.
  desk.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Enter" || (field.name !== "gpu_hours" && field.name !== "comment")) return;
    event.preventDefault();
    var decision = field.name === "gpu_hours" ? "trim" : field.dataset.decision;
    var button = decision ? field.form.querySelector("button[value=" + decision + "]") : null;
    if (button) button.click();
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key, target;
    if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "/") { target = document.querySelector("#desk-filters select"); if (target) target.focus(); }
    else if (key === "a") { target = inRow("button[value=approve]"); if (target) target.click(); }
    else if (key === "x") { target = inRow("input[type=checkbox]"); if (target) target.checked = !target.checked; }
    else if (key === "t") { target = inRow("input[name=gpu_hours]"); if (target) { target.focus(); inRow("input[name=comment]").dataset.decision = "trim"; } }
    else if (key === "r") { target = inRow("input[name=comment]"); if (target) { target.dataset.decision = "refuse"; target.focus(); } }
    else return;
    event.preventDefault();
  });
  move(0);
})();
