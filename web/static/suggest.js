/* rrdalarm: autocomplete for the threshold editor. Plain ES2017, no library, no build step.
 *
 * Progressive enhancement: without this script the fields are plain inputs.
 *
 * <input data-suggest-url="/api/suggest"     completes folders and .rrd files (a combobox)
 *        data-count-url="/api/matches"       optional: "N files match" into #<data-count-target>
 *        data-count-target="glob-count"
 *        data-ds-url="/api/ds"               optional: data sources of a plain file path, or the
 *        data-ds-target="ds">                union over the files a glob matches (with counts), as
 *                                            buttons in #<data-ds-target>-choices, toggling
 *                                            names in the comma-separated #<data-ds-target>
 *   The input should sit in a <div class="suggest-wrap">; the list is created there as
 *   <ul id="<aria-controls or id-list>" class="suggest-list" role="listbox"> with
 *   <li role="option" id="<list id>-<n>" aria-selected data-value data-kind><span class="kind">.
 *
 * <input data-ntopng-schemas-url="..." list="ntopng-schemas">  fills the <datalist> from the JSON lists:
 *   the entity typed before the first ':' (iface:, asn:, ...), else host and iface schemas together
 * <input data-ntopng-hosts-url="..." list="ntopng-hosts">      fills it with "ifid:N,host:<ip>" values
 *
 * Every name from the server is inserted with textContent or as an attribute value, never as markup.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 120;
  var WILDCARD = /[*?[]/;

  function isAbort(err) {
    return err && err.name === "AbortError";
  }

  function getJSON(url, params, signal) {
    var query = new URLSearchParams(params).toString();
    return fetch(url + (url.indexOf("?") >= 0 ? "&" : "?") + query, {
      signal: signal,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (body) {
        return { ok: resp.ok, status: resp.status, body: body };
      });
    });
  }

  /* One purpose (suggestions, count, data sources): a debounce timer and at most one request
   * in flight; a newer request aborts the older, so a slow answer never overwrites a newer one. */
  function channel() {
    var timer = null;
    var ctrl = null;
    return {
      later: function (fn) {
        clearTimeout(timer);
        timer = setTimeout(fn, DEBOUNCE_MS);
      },
      cancel: function () {
        clearTimeout(timer);
        if (ctrl) ctrl.abort();
        ctrl = null;
      },
      get: function (url, params) {
        return getAll(url, [params]).then(function (rs) { return rs[0]; });
      },
      getAll: getAll,
    };

    // Several requests that stand or fall together: a newer call aborts all of them.
    function getAll(url, list) {
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
      var mine = (ctrl = new AbortController());
      return Promise.all(list.map(function (params) { return getJSON(url, params, mine.signal); })).then(function (rs) {
        if (mine !== ctrl) throw new DOMException("superseded", "AbortError");
        ctrl = null;
        return rs;
      });
    }
  }

  function plural(n, one, many) {
    return n === 1 ? one : many;
  }

  var counter = 0;

  function bindPath(input) {
    if (input.dataset.suggestBound) return;
    input.dataset.suggestBound = "1";
    var url = input.dataset.suggestUrl;
    var wrap = input.closest(".suggest-wrap") || input.parentElement;
    var listId = input.getAttribute("aria-controls") || (input.id || "suggest-" + ++counter) + "-list";
    var list = document.getElementById(listId);
    if (!list) {
      list = document.createElement("ul");
      list.id = listId;
      wrap.appendChild(list);
    }
    list.classList.add("suggest-list");
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", listId);
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("autocomplete", "off");

    var items = [];
    var options = [];
    var active = -1;
    var suggestions = channel();
    var counts = channel();
    var sources = channel();

    function isOpen() {
      return !list.hidden;
    }

    function close() {
      suggestions.cancel();
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(i) {
      active = i;
      options.forEach(function (li, k) {
        li.setAttribute("aria-selected", k === i ? "true" : "false");
      });
      if (i >= 0) {
        input.setAttribute("aria-activedescendant", options[i].id);
        options[i].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function render(data) {
      list.textContent = "";
      items = Array.isArray(data.items) ? data.items : [];
      options = items.map(function (item, i) {
        var li = document.createElement("li");
        li.id = listId + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.value = item.value;
        li.dataset.kind = item.kind;
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = item.kind === "dir" ? "folder" : "file";
        li.appendChild(kind); // first, so that it floats right on the same line
        li.appendChild(document.createTextNode(item.value));
        // mousedown would move the focus out of the input and close the list before the click.
        li.addEventListener("mousedown", function (e) { e.preventDefault(); });
        li.addEventListener("click", function () { pick(i); });
        list.appendChild(li);
        return li;
      });
      if (data.more) {
        var more = document.createElement("li");
        more.setAttribute("role", "presentation");
        more.className = "muted";
        more.textContent = "more: keep typing to narrow the list";
        list.appendChild(more);
      }
      active = -1;
      input.removeAttribute("aria-activedescendant");
      list.hidden = options.length === 0;
      input.setAttribute("aria-expanded", list.hidden ? "false" : "true");
    }

    function suggestNow() {
      var value = input.value;
      suggestions.get(url, { q: value }).then(function (r) {
        if (input.value !== value || document.activeElement !== input) return;
        if (r.ok && r.body) render(r.body);
        else close();
      }).catch(function (err) {
        if (!isAbort(err)) close();
      });
    }

    function pick(i) {
      var item = items[i];
      if (!item) return;
      input.value = item.value;
      input.focus();
      input.setSelectionRange(item.value.length, item.value.length);
      // Other scripts of the page learn about the new value; "input" is what typing sends.
      input.dispatchEvent(new Event("change", { bubbles: true }));
      if (item.kind === "dir") suggestNow(); // straight into the folder
      else close();
      afterChange();
    }

    // ---------------------------------------------------------------- live count

    var countEl = input.dataset.countTarget && document.getElementById(input.dataset.countTarget);
    var countUrl = input.dataset.countUrl;

    function showCount(text, isError, title) {
      countEl.textContent = text;
      countEl.classList.toggle("error", isError);
      if (title) countEl.title = title;
      else countEl.removeAttribute("title");
    }

    function updateCount() {
      if (!countEl || !countUrl) return;
      var value = input.value;
      if (!value) {
        counts.cancel();
        showCount("", false);
        return;
      }
      counts.get(countUrl, { glob: value }).then(function (r) {
        if (input.value !== value) return;
        var b = r.body || {};
        if (r.ok && typeof b.count === "number") {
          var text = b.count + plural(b.count, " file matches", " files match");
          if (b.partial && typeof b.message === "string") text = b.message;
          if (b.outside) {
            text += "; " + b.outside + plural(b.outside, " symlink leads", " symlinks lead") +
              " outside the RRD root and will be skipped";
          }
          showCount(text, false, Array.isArray(b.sample) ? b.sample.join("\n") : "");
        } else if (typeof b.error === "string") {
          showCount(b.error, true);
        } else {
          showCount("", false);
        }
      }).catch(function (err) {
        if (!isAbort(err)) showCount("", false);
      });
    }

    // ---------------------------------------------------------------- data sources

    var dsInput = input.dataset.dsTarget && document.getElementById(input.dataset.dsTarget);
    var dsBox = dsInput && document.getElementById(dsInput.id + "-choices");
    var dsUrl = input.dataset.dsUrl;

    function chosen() {
      return dsInput.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    }

    function markChosen() {
      if (!dsBox) return;
      var names = chosen();
      dsBox.querySelectorAll("button[data-ds]").forEach(function (b) {
        b.setAttribute("aria-pressed", names.indexOf(b.dataset.ds) >= 0 ? "true" : "false");
      });
    }

    function toggle(name) {
      var names = chosen();
      var at = names.indexOf(name);
      if (at >= 0) names.splice(at, 1);
      else names.push(name);
      dsInput.value = names.join(", ");
      dsInput.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function dsButton(name, files, total) {
      var button = document.createElement("button");
      button.type = "button"; // never a submit button inside the form
      button.dataset.ds = name;
      button.textContent = name;
      if (typeof files === "number") {
        var count = document.createElement("span");
        count.className = "ds-files";
        count.textContent = files === total ? "all" : files + "/" + total;
        button.appendChild(count);
        button.title = "in " + files + " of the " + total + " files read";
      }
      button.addEventListener("click", function () { toggle(name); });
      dsBox.appendChild(document.createTextNode(" "));
      dsBox.appendChild(button);
    }

    function showDSError(b) {
      if (typeof b.error !== "string") return;
      var err = document.createElement("span");
      err.className = "error";
      err.textContent = b.error;
      dsBox.appendChild(err);
    }

    function label(text) {
      var span = document.createElement("span");
      span.className = "muted";
      span.textContent = text;
      dsBox.appendChild(span);
    }

    // One file: its data sources in its order. A glob: the union over the files it matches, with counts.
    function showFileDS(b) {
      label(b.ds.length ? "Data sources of this file: " : "This file has no data sources.");
      b.ds.forEach(function (name) { dsButton(name); });
    }

    function showUnionDS(b) {
      if (!b.files) {
        if (b.unreadable) label("None of the matched files could be read as an RRD.");
        return;
      }
      var text = "Data sources of the " + (b.partial ? "first " : "") + b.files +
        plural(b.files, " matched file", " matched files") + (b.unreadable ? " (" + b.unreadable + " unreadable)" : "") + ": ";
      label(b.ds.length ? text : "The matched files have no data sources.");
      b.ds.forEach(function (d) {
        if (d && typeof d.name === "string") dsButton(d.name, d.files, b.files);
      });
    }

    function updateDS() {
      if (!dsBox || !dsUrl) return;
      var value = input.value;
      var glob = WILDCARD.test(value);
      if (!value || (!glob && !/\.rrd$/.test(value))) {
        sources.cancel();
        dsBox.textContent = "";
        return;
      }
      sources.get(dsUrl, glob ? { glob: value } : { file: value }).then(function (r) {
        if (input.value !== value) return;
        dsBox.textContent = "";
        var b = r.body || {};
        if (r.ok && Array.isArray(b.ds)) {
          if (glob) showUnionDS(b);
          else showFileDS(b);
          markChosen();
        } else {
          showDSError(b);
        }
      }).catch(function (err) {
        if (!isAbort(err)) dsBox.textContent = "";
      });
    }

    if (dsInput) dsInput.addEventListener("input", markChosen);

    function afterChange() {
      counts.later(updateCount);
      sources.later(updateDS);
    }

    // ---------------------------------------------------------------- events

    input.addEventListener("input", function () {
      if (active >= 0) highlight(-1); // the options are about to change: Enter must not take a stale one
      suggestions.later(suggestNow);
      afterChange();
    });

    input.addEventListener("keydown", function (e) {
      if (e.isComposing) return;
      var n = options.length;
      switch (e.key) {
        case "ArrowDown":
          e.preventDefault();
          if (!isOpen() || !n) suggestNow();
          else highlight(active + 1 >= n ? 0 : active + 1);
          break;
        case "ArrowUp":
          if (!isOpen() || !n) return;
          e.preventDefault();
          highlight(active <= 0 ? n - 1 : active - 1);
          break;
        case "Enter":
          if (!isOpen()) return; // a closed list: Enter submits the form as usual
          e.preventDefault();
          if (active >= 0) pick(active);
          else close();
          break;
        case "Escape":
          if (!isOpen()) return;
          e.preventDefault(); // only the list closes, not a surrounding dialog
          close();
          break;
        case "Tab":
          close();
          break;
      }
    });

    input.addEventListener("blur", close);

    // An edit form arrives filled in: show its count and data sources at once.
    if (input.value) {
      updateCount();
      updateDS();
    }
  }

  // -------------------------------------------------------------------- ntopng datalists

  function ifidOf(text) {
    var m = /(?:^|,)\s*ifid:(\d+)/.exec(text || "");
    return m ? m[1] : "0";
  }

  function bindDatalist(input, kind) {
    var flag = "ntopng" + kind + "Bound";
    if (input.dataset[flag]) return;
    input.dataset[flag] = "1";
    var url = kind === "schemas" ? input.dataset.ntopngSchemasUrl : input.dataset.ntopngHostsUrl;
    var listId = input.getAttribute("list");
    if (!listId) {
      listId = (input.id || input.name || "ntopng-" + ++counter) + "-options";
      input.setAttribute("list", listId);
    }
    var datalist = document.getElementById(listId);
    if (!datalist) {
      datalist = document.createElement("datalist");
      datalist.id = listId;
      input.insertAdjacentElement("afterend", datalist);
    }
    var loaded = null; // the parameters of the last answer (or failure)
    var failed = false;
    var requests = channel();

    // One parameter set per request: schemas of the typed entity, or of hosts and interfaces
    // (what thresholds watch most) while no entity is typed yet.
    function params() {
      if (kind === "schemas") {
        var m = /^([a-z_]+):/.exec(input.value);
        var query = document.querySelector("input[data-ntopng-hosts-url]");
        var ifid = ifidOf(query && query.value);
        return (m ? [m[1]] : ["host", "iface"]).map(function (entity) { return { entity: entity, ifid: ifid }; });
      }
      return [{ ifid: ifidOf(input.value) }];
    }

    function values(bodies, p) {
      var names = [].concat.apply([], bodies);
      if (kind === "schemas") return names;
      return ["ifid:" + p.ifid + ",host:*"].concat(names.map(function (h) { return "ifid:" + p.ifid + ",host:" + h; }));
    }

    function usable(r) {
      return r.ok && Array.isArray(r.body);
    }

    function load(retry) {
      var ps = params();
      var key = JSON.stringify(ps);
      if (key === loaded && !(retry && failed)) return;
      loaded = key;
      requests.getAll(url, ps).then(function (rs) {
        var bad = rs.filter(function (r) { return !usable(r); });
        failed = bad.length > 0;
        // Whatever did answer is offered; the first failure's reason goes in the tooltip.
        if (failed) input.title = bad[0].body && typeof bad[0].body.error === "string" ? bad[0].body.error : "";
        else input.removeAttribute("title");
        if (bad.length === rs.length) return;
        datalist.textContent = "";
        values(rs.filter(usable).map(function (r) { return r.body; }), ps[0]).forEach(function (v) {
          if (typeof v !== "string") return;
          var option = document.createElement("option");
          option.value = v;
          datalist.appendChild(option);
        });
      }).catch(function (err) {
        if (!isAbort(err)) failed = true;
      });
    }

    input.addEventListener("focus", function () { load(true); });
    input.addEventListener("input", function () { requests.later(function () { load(false); }); });
  }

  function init(root) {
    var scope = root || document;
    scope.querySelectorAll("input[data-suggest-url]").forEach(bindPath);
    scope.querySelectorAll("input[data-ntopng-schemas-url]").forEach(function (i) { bindDatalist(i, "schemas"); });
    scope.querySelectorAll("input[data-ntopng-hosts-url]").forEach(function (i) { bindDatalist(i, "hosts"); });
  }

  window.rrdalarmSuggest = { init: init };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
})();
