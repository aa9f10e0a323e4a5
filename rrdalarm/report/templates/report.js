// Pages and filters for the report table; the rows come as JSON from the page itself.
// Cells are set with textContent only, so file names are always shown as text.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 200;
  var page = 0;
  var tbody = document.getElementById("rows");
  var form = document.getElementById("report-filters");
  var text = document.getElementById("f-text");
  var status = document.getElementById("f-status");
  var severity = document.getElementById("f-severity");
  var threshold = document.getElementById("f-threshold");
  var info = document.getElementById("page-info");
  var rows = data.rows;

  function filtered() {
    var q = text.value.trim().toLowerCase(), s = status.value, v = severity.value, t = threshold.value;
    return rows.filter(function (r) {
      return (!q || r[1].toLowerCase().indexOf(q) !== -1) && (!s || r[8] === s) && (!v || r[9] === v) &&
        (!t || String(r[0]) === t);
    });
  }

  // The filters live in the address (a link shows the same rows); a saved file (check --html) keeps its own.
  function remember() {
    if (location.protocol === "file:" || !window.history.replaceState) { return; }
    var query = new URLSearchParams();
    [["q", text.value.trim()], ["threshold", threshold.value], ["severity", severity.value],
     ["status", status.value]].forEach(function (p) { if (p[1]) { query.set(p[0], p[1]); } });
    var search = query.toString();
    window.history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
  }

  function render() {
    var list = filtered();
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    if (page >= pages) { page = pages - 1; }
    var start = page * PAGE, end = Math.min(list.length, start + PAGE);
    var frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) {
      var r = list[i];
      var tr = document.createElement("tr");
      tr.className = "s-" + r[8].toLowerCase().replace(/ /g, "-");
      for (var c = 0; c < 11; c++) {
        var td = document.createElement("td");
        td.dataset.label = data.columns[c];  // the card's label at phone width
        if (c === 0 || c === 3 || c === 5) { td.className = "num"; }
        if (c === 1) { td.className = "file"; }
        if (c === 8 && r[11]) {
          var a = document.createElement("a");
          a.href = r[11];
          a.textContent = r[c];
          td.appendChild(a);
        } else {
          td.textContent = r[c];
        }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    info.textContent = list.length ? "rows " + (start + 1) + "–" + end + " of " + list.length : "no rows";
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages - 1;
  }

  function refilter() { page = 0; remember(); render(); }
  [status, severity, threshold].forEach(function (el) { el.addEventListener("change", refilter); });
  text.addEventListener("input", refilter);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); refilter(); });
  document.getElementById("f-apply").hidden = true;  // the script filters as you choose
  document.getElementById("prev").addEventListener("click", function () { page--; render(); });
  document.getElementById("next").addEventListener("click", function () { page++; render(); });
  render();
})();
