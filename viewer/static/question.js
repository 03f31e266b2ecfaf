// A question page: render math; while the question is in progress, reload when it changes.
"use strict";
(function () {
  if (window.scireflectRenderMath) window.scireflectRenderMath(document);
  const body = document.body;
  if (!body.dataset.qid || body.dataset.status !== "running") return;
  const pollMs = parseInt(body.dataset.pollMs || "2000", 10);
  async function poll() {
    try {
      const resp = await fetch("/api/question/" + encodeURIComponent(body.dataset.qid), { cache: "no-store" });
      if (resp.ok) {
        const rec = await resp.json();
        const steps = (rec.steps || []).length;
        if ((rec.status || "running") !== body.dataset.status || String(steps) !== body.dataset.steps) {
          location.reload();
          return;
        }
      }
    } catch (e) { /* retry */ }
    setTimeout(poll, pollMs);
  }
  setTimeout(poll, pollMs);
})();
