// Tocsin's one script: the alert list updates itself from the server's
// event stream (/alerts/live). Without it every page still works.
"use strict";
(function () {
  const table = document.getElementById("alert-list");
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const status = document.getElementById("live-status");
  const firstPage = table.dataset.first === "1";
  const query = table.dataset.live || "";
  let reloading = false;

  function say(text) {
    status.hidden = false;
    status.textContent = text;
  }

  function rowFrom(html) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function place(row) {
    const id = Number(row.dataset.id);
    for (const r of body.rows) {
      if (Number(r.dataset.id) < id) { body.insertBefore(row, r); return; }
    }
    body.appendChild(row);
  }

  function upsert(data) {
    const old = document.getElementById("alert-" + data.id);
    const row = rowFrom(data.html);
    if (!row) return;
    if (old) {
      const box = old.querySelector("input[type=checkbox]");
      const nbox = row.querySelector("input[type=checkbox]");
      if (box && nbox) nbox.checked = box.checked;
      old.replaceWith(row);
    } else {
      // Only the first page takes alerts it did not show; older pages
      // update the rows they have.
      if (!firstPage) return;
      place(row);
      const none = document.getElementById("no-alerts");
      if (none) none.remove();
    }
    row.classList.add("fresh");
  }

  // Many alerts changed at once: fetch the page again (at most every 5 s)
  // and take its rows and counts.
  async function refresh() {
    if (reloading) return;
    reloading = true;
    try {
      const res = await fetch(location.href, { credentials: "same-origin" });
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById("alert-list");
      if (fresh) body.replaceWith(fresh.tBodies[0]);
      for (const c of doc.querySelectorAll("[data-count]")) counts({ [c.dataset.count]: Number(c.textContent) });
      say("Many alerts changed; the list was refreshed.");
    } catch (e) {
      say("Could not refresh the list; reload the page.");
    }
    setTimeout(() => { reloading = false; }, 5000);
  }

  function counts(data) {
    for (const [name, n] of Object.entries(data)) {
      const el = document.querySelector('[data-count="' + name + '"]');
      if (el) el.textContent = String(n);
    }
  }

  const src = new EventSource("/alerts/live" + (query ? "?" + query : ""));
  src.addEventListener("hello", () => { table.dataset.connected = "1"; status.hidden = true; });
  src.addEventListener("alert", (e) => upsert(JSON.parse(e.data)));
  src.addEventListener("gone", (e) => {
    const old = document.getElementById("alert-" + JSON.parse(e.data).id);
    if (old) old.remove();
  });
  src.addEventListener("counts", (e) => counts(JSON.parse(e.data)));
  src.addEventListener("reload", () => refresh());
  src.onerror = () => { table.dataset.connected = "0"; say("Live updates paused; reconnecting…"); };
})();
