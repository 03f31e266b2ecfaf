// The review page: label the trace shown by keyboard (v valid, x invalid + reason 1-5, s skip, arrows move).
// A label is POSTed to /api/label with the hash of the trace as shown; the next trace then opens.
"use strict";
(function () {
  if (window.scireflectRenderMath) window.scireflectRenderMath(document);
  const body = document.body;
  const pos = parseInt(body.dataset.pos || "0", 10);
  const reasons = document.getElementById("review-reasons");
  const status = document.getElementById("review-status");
  if (!body.dataset.qid) return;

  function go(to) { location.assign("/review?pos=" + Math.max(0, to)); }
  async function send(label, reason) {
    status.textContent = "saving…";
    const note = document.getElementById("review-note").value;
    try {
      const resp = await fetch("/api/label", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id: body.dataset.qid, trace_hash: body.dataset.hash, label: label, reason: reason || null, note: note }),
      });
      const data = await resp.json();
      if (!resp.ok) { status.textContent = "not saved: " + (data.error || resp.statusText); return; }
      go(pos + 1);
    } catch (e) {
      status.textContent = "not saved: the viewer server is unreachable";
    }
  }
  function chosenReason() {
    const checked = reasons.querySelector("input[name=reason]:checked");
    return checked ? checked.value : null;
  }
  function askReason() { reasons.hidden = false; status.textContent = "press 1-5 for the reason, then Enter (Esc: cancel)"; }

  document.getElementById("label-valid").addEventListener("click", function () { send("valid"); });
  document.getElementById("label-invalid").addEventListener("click", askReason);
  document.getElementById("label-skip").addEventListener("click", function () { send("skip"); });
  document.getElementById("review-prev").addEventListener("click", function () { go(pos - 1); });
  document.getElementById("review-next").addEventListener("click", function () { go(pos + 1); });
  reasons.querySelectorAll("input[name=reason]").forEach(function (input) {
    input.addEventListener("change", function () { document.getElementById("review-note").focus(); });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const typing = ev.target && ev.target.id === "review-note";
    if (!reasons.hidden) {
      if (ev.key === "Escape") { reasons.hidden = true; status.textContent = ""; ev.preventDefault(); return; }
      if (ev.key === "Enter") {
        const reason = chosenReason();
        if (reason) send("invalid", reason); else status.textContent = "choose a reason first (1-5)";
        ev.preventDefault();
        return;
      }
      if (!typing && /^[1-9]$/.test(ev.key)) {
        const input = reasons.querySelectorAll("input[name=reason]")[parseInt(ev.key, 10) - 1];
        if (input) { input.checked = true; ev.preventDefault(); }
        return;
      }
      if (typing) return;
    }
    if (typing) return;
    if (ev.key === "v") { send("valid"); ev.preventDefault(); }
    else if (ev.key === "x") { askReason(); ev.preventDefault(); }
    else if (ev.key === "s") { send("skip"); ev.preventDefault(); }
    else if (ev.key === "ArrowRight") { go(pos + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { go(pos - 1); ev.preventDefault(); }
  });
})();
