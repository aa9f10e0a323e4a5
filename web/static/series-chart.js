/* The series page's interactive chart: /api/points drawn with the vendored uPlot.
 *
 * Range buttons and the custom range fetch again; dragging zooms (uPlot's own), "Reset zoom"
 * comes back to the fetched window. The threshold and clear lines, firing periods, silences,
 * events and acknowledgements are drawn on the canvas in a hook. Colors are read from the
 * section's CSS custom properties at each draw, so a theme restyles the chart. Every text from
 * the answer goes in as text (textContent), never as markup.
 * window.rrdalarmChart exposes the last answer and the plot (for tests and for curious people).
 */
(function () {
  "use strict";

  var PREFIXES = { "6": "E", "5": "P", "4": "T", "3": "G", "2": "M", "1": "k", "0": "", "-1": "m", "-2": "µ", "-3": "n" };
  var PLAIN_UNITS = ["%", "°C", "°F", "C", "F"];

  function stripZeros(text) {
    return text.indexOf(".") < 0 ? text : text.replace(/0+$/, "").replace(/\.$/, "");
  }

  // Python's "%.3g": 3 significant digits, exponent form below 1e-4 and from 1e3, no trailing zeros.
  function g3(v) {
    if (!isFinite(v)) { return isNaN(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }
    if (v === 0) { return "0"; }
    var r = Number(v.toPrecision(3));
    var exp = Math.floor(Math.log10(Math.abs(r)));
    if (exp < -4 || exp >= 3) {
      var mant = stripZeros((r / Math.pow(10, exp)).toFixed(2));
      return mant + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }
    return stripZeros(r.toFixed(Math.max(0, 2 - exp)));
  }

  function join(number, unit) { return unit ? number + " " + unit : number; }

  // The rules of rrdalarm.common.quantities.format_quantity (fmt_value): "31.6 MB/s".
  function fmtValue(v, unit) {
    unit = unit || "";
    if (v === null || v === undefined || isNaN(v)) { return "-"; }
    if (v === 0) { return join("0", unit); }
    if (!isFinite(v) || PLAIN_UNITS.indexOf(unit) >= 0 || (!unit && Math.abs(Number(g3(v))) < 1000)) {
      return join(g3(v), unit);
    }
    var power = Math.max(-3, Math.min(6, Math.floor(Math.log10(Math.abs(v)) / 3)));
    var scaled = v / Math.pow(1000, power);
    if (Math.abs(Number(g3(scaled))) >= 1000 && power < 6) {
      power += 1;
      scaled = v / Math.pow(1000, power);
    }
    return join(g3(scaled), PREFIXES[String(power)] + unit);
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function isoDate(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }

  // ISO, 24 hours, the browser's local time: "2024-05-01 13:45".
  function fmtTime(t) {
    var d = new Date(t * 1000);
    return isoDate(d) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  // What the From and To fields take: ISO, 24 hours, the browser's local time ("T" or a space; seconds optional).
  function parseLocal(text) {
    var m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d))?$/.exec(text.trim());
    if (!m) { return null; }
    var d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    return isNaN(d.getTime()) ? null : Math.floor(d.getTime() / 1000);
  }

  function el(id) { return document.getElementById(id); }

  var section = el("series-chart");
  if (!section || typeof window.uPlot !== "function") { return; }
  var plotBox = el("chart-plot");
  var statusLine = el("chart-status");
  var hoverLine = el("chart-hover");
  var resetButton = el("chart-reset");
  var state = { data: null, plot: null, loads: 0, range: "1d", window: null, fmtValue: fmtValue, fmtTime: fmtTime };
  window.rrdalarmChart = state;

  function css(name) {
    return getComputedStyle(section).getPropertyValue(name).trim() || "#888";
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function xAxisValues(u, splits) {
    // Two lines, date over time, both ISO: readable at any zoom without crowding the axis.
    return splits.map(function (t) { return t === null ? "" : fmtTime(t).replace(" ", "\n"); });
  }

  function yRange(answer) {
    return function (u, lo, hi) {
      var vals = [lo, hi, answer.limit];
      if (answer.clear !== null && answer.clear !== undefined) { vals.push(answer.clear); }
      vals = vals.filter(function (v) { return v !== null && isFinite(v); });
      if (!vals.length) { return [0, 1]; }
      var min = Math.min.apply(null, vals);
      var max = Math.max.apply(null, vals);
      var padding = (max - min) * 0.08 || Math.abs(max) * 0.1 || 1;
      return [min - padding, max + padding];
    };
  }

  function hLine(u, value, color, dash) {
    if (value === null || value === undefined || !isFinite(value)) { return; }
    var ctx = u.ctx;
    var y = Math.round(u.valToPos(value, "y", true));
    ctx.save();
    ctx.strokeStyle = color;
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash(dash.map(function (d) { return d * devicePixelRatio; }));
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  }

  // The canvas x of time t, held inside the plot.
  function xAt(u, t) {
    var x = u.valToPos(t, "x", true);
    return Math.max(u.bbox.left, Math.min(u.bbox.left + u.bbox.width, x));
  }

  function band(u, from, to, color, top, height) {
    var x0 = xAt(u, from);
    var x1 = xAt(u, to === null ? u.scales.x.max : to);
    if (x1 <= x0) { return; }
    u.ctx.fillStyle = color;
    u.ctx.fillRect(x0, top, x1 - x0, height);
  }

  function marker(u, t, color, width) {
    if (t < u.scales.x.min || t > u.scales.x.max) { return; }
    var x = Math.round(u.valToPos(t, "x", true));
    var ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = width * devicePixelRatio;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    var s = 5 * devicePixelRatio;
    ctx.beginPath();  // a small triangle at the top: findable when the line sits on the data
    ctx.moveTo(x - s, u.bbox.top);
    ctx.lineTo(x + s, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + s * 1.4);
    ctx.fill();
    ctx.restore();
  }

  function drawBehind(u) {
    var a = state.data;
    var box = u.bbox;
    a.firing.forEach(function (p) { band(u, p[0], p[1], css("--chart-firing"), box.top, box.height); });
    var strip = 6 * devicePixelRatio;
    a.silences.forEach(function (s) { band(u, s.start, s.end, css("--chart-silence"), box.top + box.height - strip, strip); });
  }

  function drawAbove(u) {
    var a = state.data;
    hLine(u, a.limit, css("--chart-limit"), [6, 4]);
    hLine(u, a.clear, css("--chart-clear"), [2, 3]);
    a.events.forEach(function (e) {
      if (e.kind !== "ack") { marker(u, e.at, css("--chart-event"), 1); }
    });
    a.acks.forEach(function (e) { marker(u, e.at, css("--chart-ack"), 2); });
  }

  // What happened near the hovered time (within a few pixels): events, acks, silences.
  function hoverNotes(u, t) {
    var a = state.data;
    var near = Math.abs(u.posToVal(6, "x") - u.posToVal(0, "x"));
    var notes = [];
    a.events.forEach(function (e) {
      if (Math.abs(e.at - t) <= near) { notes.push(fmtTime(e.at) + " " + e.status + ": " + e.message); }
    });
    a.silences.forEach(function (s) {
      if (s.start <= t && t < s.end) { notes.push("silenced by " + s.author + ": " + s.comment); }
    });
    return notes.join(" · ");
  }

  function onCursor(u) {
    var idx = u.cursor.idx;
    if (idx === null || idx === undefined) { hoverLine.textContent = ""; return; }
    var t = u.data[0][idx];
    var v = u.data[1][idx];
    var notes = hoverNotes(u, u.posToVal(u.cursor.left, "x"));
    hoverLine.textContent = fmtTime(t) + "  " + fmtValue(v, state.data.unit) + (notes ? "  ·  " + notes : "");
  }

  function onScale(u, key) {
    if (key !== "x" || !state.window) { return; }
    var zoomed = u.scales.x.min > state.window[0] || u.scales.x.max < state.window[1];
    resetButton.disabled = !zoomed;
    section.dataset.xmin = String(Math.round(u.scales.x.min));
    section.dataset.xmax = String(Math.round(u.scales.x.max));
  }

  function size() {
    var width = Math.max(280, plotBox.clientWidth);
    return { width: width, height: width < 600 ? 220 : 300 };
  }

  function axis(extra) {
    var base = {
      stroke: function () { return css("--chart-fg"); },
      grid: { stroke: function () { return css("--chart-grid"); }, width: 1 },
      ticks: { stroke: function () { return css("--chart-grid"); }, width: 1 },
    };
    Object.keys(extra).forEach(function (k) { base[k] = extra[k]; });
    return base;
  }

  function options(answer) {
    var dims = size();
    var unit = answer.unit;
    return {
      width: dims.width,
      height: dims.height,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, y: { range: yRange(answer) } },
      legend: { show: false },
      series: [
        { value: function (u, t) { return t === null ? "-" : fmtTime(t); } },
        {
          label: answer.cf + (unit ? " (" + unit + ")" : ""),
          stroke: function () { return css("--chart-line"); },
          width: 1.5,
          spanGaps: false,
          points: { show: false },
          value: function (u, v) { return fmtValue(v, unit); },
        },
      ],
      axes: [
        axis({ values: xAxisValues, space: dims.width < 600 ? 90 : 110, size: 48 }),
        axis({ values: function (u, splits) { return splits.map(function (v) { return fmtValue(v, unit); }); },
          size: 78 }),
      ],
      hooks: {
        drawClear: [drawBehind],
        draw: [drawAbove],
        setCursor: [onCursor],
        setScale: [onScale],
      },
    };
  }

  function draw(answer) {
    var xs = answer.points.map(function (p) { return p[0]; });
    var ys = answer.points.map(function (p) { return p[1]; });
    if (state.plot) { state.plot.destroy(); }
    plotBox.textContent = "";
    // The whole answer is shown at first, its trailing unknown points included.
    state.window = xs.length ? [xs[0], xs[xs.length - 1]] : [answer.start, answer.end];
    state.plot = new window.uPlot(options(answer), [xs, ys], plotBox);
    state.plot.setScale("x", { min: state.window[0], max: state.window[1] });
    resetButton.disabled = true;
  }

  function describe(answer) {
    var known = answer.points.filter(function (p) { return p[1] !== null; }).length;
    return fmtTime(answer.start) + " – " + fmtTime(answer.end) + ", one point every " + answer.step + " s (" +
      answer.cf + "), " + known + " of " + answer.points.length + " known";
  }

  // The canvas says nothing to a screen reader: this line (the plot's description) says what it shows.
  function summarize(answer) {
    var unit = answer.unit;
    var known = answer.points.filter(function (p) { return p[1] !== null && isFinite(p[1]); });
    if (!known.length) { return "No known value in this range."; }
    var vals = known.map(function (p) { return p[1]; });
    var last = known[known.length - 1];
    var text = "Lowest " + fmtValue(Math.min.apply(null, vals), unit) + ", highest " +
      fmtValue(Math.max.apply(null, vals), unit) + ", latest " + fmtValue(last[1], unit) + " at " + fmtTime(last[0]) + ".";
    if (answer.limit !== null && answer.limit !== undefined) {
      text += " Threshold: " + answer.type + " " + fmtValue(answer.limit, unit) +
        (answer.clear !== null && answer.clear !== undefined ? ", clear level " + fmtValue(answer.clear, unit) : "") + ".";
    }
    return text + " In this range: " + answer.firing.length + " firing period(s), " + answer.events.length +
      " event(s), " + answer.silences.length + " silence(s), " + answer.acks.length + " acknowledgement(s).";
  }

  function load(query) {
    var seq = ++state.loads;
    section.dataset.state = "loading";
    setStatus("Loading…", false);
    fetch(section.dataset.pointsUrl + "&" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; }, function () {
          return { ok: false, body: { error: "the server answered " + r.status } };
        });
      })
      .then(function (got) {
        if (seq !== state.loads) { return; }  // an older request answered after a newer one
        if (!got.ok) { throw new Error(got.body.error || "cannot load the points"); }
        state.data = got.body;
        draw(got.body);
        setStatus(describe(got.body), false);
        el("chart-summary").textContent = summarize(got.body);
        section.dataset.state = "ready";
      })
      .catch(function (err) {
        if (seq !== state.loads) { return; }
        section.dataset.state = "error";
        setStatus(err.message, true);
      });
  }

  function pressRange(name) {
    section.querySelectorAll("[data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.range === name));
    });
  }

  function showRange(name) {
    state.range = name;
    pressRange(name);
    load("range=" + encodeURIComponent(name));
  }

  function showCustom(ev) {
    ev.preventDefault();
    var start = parseLocal(el("chart-from").value);
    var end = parseLocal(el("chart-to").value);
    if (start === null || end === null) { setStatus("Give From and To as YYYY-MM-DD HH:MM.", true); return; }
    if (!(start < end)) { setStatus("From must be before To.", true); return; }
    state.range = "custom";
    pressRange("");
    load("start=" + start + "&end=" + end);
  }

  function resetZoom() {
    if (state.plot && state.window) { state.plot.setScale("x", { min: state.window[0], max: state.window[1] }); }
  }

  function start() {
    section.hidden = false;
    section.querySelectorAll("[data-range]").forEach(function (b) {
      b.addEventListener("click", function () { showRange(b.dataset.range); });
    });
    el("chart-custom").addEventListener("submit", showCustom);
    resetButton.addEventListener("click", resetZoom);
    var now = Math.floor(Date.now() / 1000);
    el("chart-from").value = fmtTime(now - 86400);
    el("chart-to").value = fmtTime(now);
    window.addEventListener("resize", function () {
      if (state.plot) { state.plot.setSize(size()); }
    });
    showRange(state.range);
  }

  start();
})();
