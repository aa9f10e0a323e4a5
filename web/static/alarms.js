// Alarms now: refreshes itself every data-refresh seconds (not while the tab is hidden or a
// form in it is being filled in), keeping open menus open; silence forms preview what they cover.
(function () {
  "use strict";
  const box = document.getElementById("alarms");
  if (!box) return;
  const every = (parseInt(box.dataset.refresh, 10) || 30) * 1000;

  function busy() {
    const active = document.activeElement;
    return active && box.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  async function refresh() {
    if (document.hidden || busy()) return;
    let html;
    try {
      const answer = await fetch(box.dataset.src, {credentials: "same-origin", headers: {Accept: "text/html"}});
      if (!answer.ok) return;
      html = await answer.text();
    } catch (err) {
      return; // the next turn tries again
    }
    if (busy()) return;
    const open = Array.from(box.querySelectorAll("details[open]"), (d) => d.id);
    const before = counts();
    box.innerHTML = html;
    for (const id of open) {
      const again = document.getElementById(id);
      if (again) again.open = true;
    }
    announce(before);
    box.dispatchEvent(new CustomEvent("alarms:refreshed"));
  }

  // The count bar as one line ("1 critical, 2 warning, …"), for the status line read to screen readers.
  function counts() {
    const bar = box.querySelector("#countbar");
    if (!bar) return "";
    return Array.from(bar.querySelectorAll(".count"), (c) => c.textContent.replace(/\s+/g, " ").trim()).join(", ");
  }

  function announce(before) {
    const now = counts();
    const news = document.getElementById("alarms-news");
    if (news && now !== before) news.textContent = "Alarms now changed: " + now;
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });

  function previewQuery(form) {
    const data = new FormData(form);
    const scope = data.get("scope") || "series";
    const query = new URLSearchParams({threshold: data.get("threshold") || ""});
    if (scope !== "threshold") query.set("series", data.get("series") || "");
    if (scope === "series" && data.get("ds")) query.set("ds", data.get("ds"));
    return query;
  }

  async function preview(form) {
    const out = form.querySelector("output.preview");
    if (!out) return;
    try {
      const answer = await fetch("/api/silences/preview?" + previewQuery(form), {credentials: "same-origin"});
      const got = await answer.json();
      if (!answer.ok) { out.textContent = got.error || ""; return; }
      out.textContent = got.series === null
        ? `matches ${got.firing} firing series`
        : `matches ${got.series} series (${got.firing} firing)`;
    } catch (err) {
      out.textContent = "";
    }
  }

  box.addEventListener("toggle", (ev) => {
    const form = ev.target.querySelector && ev.target.open && ev.target.querySelector("form.silence-form");
    if (form) preview(form);
  }, true);
  box.addEventListener("change", (ev) => {
    const form = ev.target.closest("form.silence-form");
    if (form && ev.target.name === "scope") preview(form);
  });
})();
