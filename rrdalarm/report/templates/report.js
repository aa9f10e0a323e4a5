// Pages and filters for the report table; the rows come as JSON from the page itself.
// Cells are set with textContent only, so file names are always shown as text.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 200;
  var page = 0;
  var tbody = document.getElementById("rows");
  var status = document.getElementById("f-status");
  var threshold = document.getElementById("f-threshold");
  var info = document.getElementById("page-info");
  var rows = data.rows;

  function filtered() {
    var s = status.value, t = threshold.value;
    return rows.filter(function (r) {
      return (!s || r[8] === s) && (!t || String(r[0]) === t);
    });
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

  status.addEventListener("change", function () { page = 0; render(); });
  threshold.addEventListener("change", function () { page = 0; render(); });
  document.getElementById("prev").addEventListener("click", function () { page--; render(); });
  document.getElementById("next").addEventListener("click", function () { page++; render(); });
  render();
})();
