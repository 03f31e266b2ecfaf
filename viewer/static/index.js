// The questions table: one page of rows from /api/questions, filtered, sorted and paged by the server
// (a run of 100,000 questions never sends them all); polled for new rows while a run is going.
// All trace text goes into the page with textContent (never innerHTML).
"use strict";
(function () {
  const PAGE = 200;
  const state = { gen: null, offset: 0, sort: null, desc: false, matched: 0, total: 0, seq: 0, timer: null };
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
  function refreshOptions(facets) {
    for (const k of keys) {
      const select = document.getElementById("f-" + k);
      const have = new Set(Array.from(select.options).map(function (o) { return o.value; }));
      const wanted = params.get(k);
      const values = new Set((facets && facets[k]) || []);
      if (wanted) values.add(wanted);
      Array.from(values).sort().forEach(function (v) {
        if (!have.has(v)) { const o = el("option", v); o.value = v; select.appendChild(o); }
      });
      if (wanted && !select.dataset.init) { select.value = wanted; }
      select.dataset.init = "1";
    }
  }
  function initFilters() {
    const idInput = document.getElementById("f-id");
    idInput.value = params.get("q") || "";
    const page = parseInt(params.get("page") || "1", 10);
    state.offset = page > 1 ? (page - 1) * PAGE : 0;
    refreshOptions(null);
  }
  function renderRows(rows) {
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
  }
  function renderPager(shown) {
    const from = shown ? state.offset + 1 : 0, to = state.offset + shown;
    let text = state.matched + " of " + state.total + " questions";
    if (state.matched > PAGE) text += " · showing " + from + "–" + to;
    document.getElementById("count").textContent = text;
    const paged = state.matched > PAGE;
    document.getElementById("pager").hidden = !paged;
    document.getElementById("prev").disabled = state.offset === 0;
    document.getElementById("next").disabled = state.offset + PAGE >= state.matched;
    document.getElementById("page").textContent = "page " + (Math.floor(state.offset / PAGE) + 1) + " of " +
      Math.max(1, Math.ceil(state.matched / PAGE));
    document.getElementById("empty").hidden = shown > 0 || state.total === 0;
  }
  function renderRunning(running) {
    const pbody = document.querySelector("#progress tbody");
    pbody.replaceChildren();
    for (const r of running) {
      const tr = el("tr", null, "row status-running");
      const td = el("td"); const a = el("a", r.id); a.href = qurl(r.id); td.appendChild(a); tr.appendChild(td);
      tr.appendChild(el("td", r.subject));
      tr.appendChild(el("td", r.attempts, "num"));
      tr.appendChild(el("td", r.steps, "num"));
      tr.appendChild(el("td", Number(r.tokens).toLocaleString("en-US"), "num"));
      tr.appendChild(el("td", r.updated_at || "-"));
      pbody.appendChild(tr);
    }
    document.getElementById("progress-section").hidden = running.length === 0;
    document.getElementById("finished-title").hidden = running.length === 0;
  }
  function query() {
    const f = filters(), p = new URLSearchParams();
    for (const k of keys) if (f[k]) p.set(k, f[k]);
    if (f.q) p.set("q", f.q);
    if (state.sort) { p.set("sort", state.sort); if (state.desc) p.set("desc", "1"); }
    p.set("offset", String(state.offset));
    p.set("limit", String(PAGE));
    if (state.gen !== null) p.set("gen", String(state.gen));
    return p;
  }
  function saveFilters() {
    const f = filters(), p = new URLSearchParams();
    for (const k in f) if (f[k]) p.set(k, f[k]);
    if (state.offset) p.set("page", String(Math.floor(state.offset / PAGE) + 1));
    const qs = p.toString();
    history.replaceState(null, "", qs ? "?" + qs : location.pathname);
  }
  async function load() {
    clearTimeout(state.timer);
    const seq = ++state.seq;
    const live = document.getElementById("live");
    try {
      const resp = await fetch("/api/questions?" + query().toString(), { cache: "no-store" });
      const data = await resp.json();
      if (seq !== state.seq) return;  // a newer request (a filter changed meanwhile) is on its way
      if (!resp.ok) throw new Error(data.error || resp.statusText);
      state.gen = data.generation;
      state.matched = data.matched;
      state.total = data.total;
      if (data.rows.length === 0 && state.offset > 0 && state.offset >= data.matched) {
        state.offset = Math.max(0, Math.floor((data.matched - 1) / PAGE) * PAGE);  // past the end: the last page
        saveFilters();
        load();
        return;
      }
      refreshOptions(data.facets);
      renderRows(data.rows);
      renderPager(data.rows.length);
      renderRunning(data.in_progress || []);
      live.textContent = "live · " + data.total + " finished, " + (data.in_progress || []).length +
        " in progress · updated " + new Date().toLocaleTimeString();
      live.className = "live ok";
    } catch (e) {
      if (seq !== state.seq) return;
      live.textContent = "viewer server unreachable; retrying…";
      live.className = "live bad";
    }
    state.timer = setTimeout(load, pollMs);
  }
  document.querySelectorAll(".filters [data-key]").forEach(function (input) {
    input.addEventListener("input", function () { state.offset = 0; saveFilters(); load(); });
  });
  document.querySelectorAll("#questions th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      const k = th.dataset.sort;
      state.desc = state.sort === k ? !state.desc : false;
      state.sort = k;
      state.offset = 0;
      saveFilters();
      load();
    });
  });
  document.getElementById("prev").addEventListener("click", function () {
    state.offset = Math.max(0, state.offset - PAGE); saveFilters(); load();
  });
  document.getElementById("next").addEventListener("click", function () {
    if (state.offset + PAGE < state.matched) { state.offset += PAGE; saveFilters(); load(); }
  });
  initFilters();
  load();
})();
