// Render LaTeX in elements with class "math" using the vendored KaTeX (auto-render).
// Delimiters: $$..$$, \[..\], \(..\); single $..$ only where the text looks like LaTeX
// ($ followed by TeX syntax), since GSM8K-style questions use $ for dollars.
"use strict";
window.scireflectRenderMath = function (root) {
  if (typeof renderMathInElement !== "function") return;
  const base = [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
  ];
  const texDollar = /\$[^$\n]*[\\^_{}][^$\n]*\$/;
  (root || document).querySelectorAll(".math").forEach(function (el) {
    if (el.dataset.rendered) return;
    const delimiters = texDollar.test(el.textContent) ? base.concat([{ left: "$", right: "$", display: false }]) : base;
    try {
      renderMathInElement(el, {
        delimiters: delimiters, throwOnError: false, trust: false, strict: "ignore",
        ignoredClasses: ["no-math"], ignoredTags: ["script", "noscript", "style", "textarea", "pre", "code", "option"],
      });
    } catch (e) { /* leave the raw text */ }
    el.dataset.rendered = "1";
  });
};
