// The questions table: fetch rows from /api/questions, filter and sort client-side, poll for new rows.
// All trace text goes into the page with textContent (never innerHTML).
"use strict";
(function () {
  const state = { gen: null, rows: [], running: [], sort: null, desc: false };
  const keys = ["subject", "status", "stage", "reason"];
  const pollMs = parseInt(document.body.dataset.pollMs || "2000", 10);
  const params = new URLSearchParams(location.search);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function qurl(id) { return "/q/" + encodeURIComponent(id); }
  function filters() {
    const f = {};
    document.querySelectorAll(".filters [data-key]").forEach(function (input) { f[input.dataset.key] = input.value; });
    return f;
  }
  function matches(row, f) {
    for (const k of keys) {
      if (f[k] && String(row[k] === null || row[k] === undefined ? "-" : row[k]) !== f[k]) return false;
    }
    return !f.q || String(row.id).toLowerCase().includes(f.q.toLowerCase());
  }
  function refreshOptions() {
    for (const k of keys) {
      const select = document.getElementById("f-" + k);
      const have = new Set(Array.from(select.options).map(function (o) { return o.value; }));
      const wanted = params.get(k);
      const values = new Set(state.rows.map(function (r) { return r[k] === null || r[k] === undefined ? "-" : String(r[k]); }));
      if (wanted) values.add(wanted);
      Array.from(values).sort().forEach(function (v) {
        if (!have.has(v)) { const o = el("option", v); o.value = v; select.appendChild(o); }
      });
      if (wanted && !select.dataset.init) { select.value = wanted; }
      select.dataset.init = "1";
    }
    const idInput = document.getElementById("f-id");
    if (!idInput.dataset.init) { idInput.value = params.get("q") || ""; idInput.dataset.init = "1"; }
  }
  function render() {
    const f = filters();
    let rows = state.rows.filter(function (r) { return matches(r, f); });
    if (state.sort) {
      const k = state.sort, sign = state.desc ? -1 : 1;
      rows = rows.slice().sort(function (a, b) {
        const x = a[k], y = b[k];
        if (typeof x === "number" && typeof y === "number") return sign * (x - y);
        return sign * String(x === null ? "" : x).localeCompare(String(y === null ? "" : y));
      });
    }
    const body = document.querySelector("#questions tbody");
    body.replaceChildren();
    for (const r of rows) {
      const tr = el("tr", null, "row status-" + r.status);
      tr.dataset.id = r.id;
      const td = el("td"); const a = el("a", r.id); a.href = qurl(r.id); td.appendChild(a); tr.appendChild(td);
      tr.appendChild(el("td", r.subject));
      const st = el("td"); st.appendChild(el("span", r.status, "badge status-" + r.status)); tr.appendChild(st);
      tr.appendChild(el("td", r.stage || "-"));
      tr.appendChild(el("td", r.reason || "-"));
      tr.appendChild(el("td", r.attempts, "num"));
      tr.appendChild(el("td", Number(r.tokens).toLocaleString("en-US"), "num"));
      tr.appendChild(el("td", Number(r.seconds).toFixed(1), "num"));
      body.appendChild(tr);
    }
    document.getElementById("count").textContent = rows.length + " of " + state.rows.length + " questions";
    document.getElementById("empty").hidden = rows.length > 0 || state.rows.length === 0;
    const pbody = document.querySelector("#progress tbody");
    pbody.replaceChildren();
    for (const r of state.running) {
      const tr = el("tr", null, "row status-running");
      const td = el("td"); const a = el("a", r.id); a.href = qurl(r.id); td.appendChild(a); tr.appendChild(td);
      tr.appendChild(el("td", r.subject));
      tr.appendChild(el("td", r.attempts, "num"));
      tr.appendChild(el("td", r.steps, "num"));
      tr.appendChild(el("td", Number(r.tokens).toLocaleString("en-US"), "num"));
      tr.appendChild(el("td", r.updated_at || "-"));
      pbody.appendChild(tr);
    }
    document.getElementById("progress-section").hidden = state.running.length === 0;
    document.getElementById("finished-title").hidden = state.running.length === 0;
  }
  function saveFilters() {
    const f = filters(), p = new URLSearchParams();
    for (const k in f) if (f[k]) p.set(k, f[k]);
    const qs = p.toString();
    history.replaceState(null, "", qs ? "?" + qs : location.pathname);
  }
  async function poll() {
    const live = document.getElementById("live");
    try {
      const url = "/api/questions?since=" + state.rows.length + (state.gen === null ? "" : "&gen=" + state.gen);
      const resp = await fetch(url, { cache: "no-store" });
      const data = await resp.json();
      if (data.reset) state.rows = [];
      state.gen = data.generation;
      state.rows = state.rows.concat(data.rows);
      state.running = data.in_progress || [];
      refreshOptions();
      render();
      live.textContent = "live · " + state.rows.length + " finished, " + state.running.length +
        " in progress · updated " + new Date().toLocaleTimeString();
      live.className = "live ok";
    } catch (e) {
      live.textContent = "viewer server unreachable; retrying…";
      live.className = "live bad";
    }
    setTimeout(poll, pollMs);
  }
  document.querySelectorAll(".filters [data-key]").forEach(function (input) {
    input.addEventListener("input", function () { saveFilters(); render(); });
  });
  document.querySelectorAll("#questions th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      const k = th.dataset.sort;
      state.desc = state.sort === k ? !state.desc : false;
      state.sort = k;
      render();
    });
  });
  poll();
})();
