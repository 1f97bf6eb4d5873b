// The explorer's script: draws each page's plots with plotly.js, and keeps the jobs page's
// progress live from Redis (/api/progress).
"use strict";

// Every <figure class="plot"> holds its figure as JSON (templates/macros.html, figures.py).
function drawPlots() {
  for (const figure of document.querySelectorAll("figure.plot")) {
    const spec = JSON.parse(figure.querySelector("script[type='application/json']").textContent);
    const area = figure.querySelector(".plot-area");
    Plotly.newPlot(area, spec.data, spec.layout, {
      displaylogo: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d"],
    });
    // A point with a link (a feature of the presence plot) opens it, as its label does.
    area.on("plotly_click", (event) => {
      const point = event.points[0];
      const urls = spec.links[point.curveNumber];
      if (urls && urls[point.pointNumber]) window.location.assign(urls[point.pointNumber]);
    });
  }
}

// The live counts come from Redis; a spooled SHAP shard is pending until it is ingested.
// The status follows them as the views' query decides it, except that a cancel is kept
// until a retry makes units pending again.
async function refreshProgress() {
  const cells = document.querySelectorAll("[data-progress]");
  const ids = [...cells].map((c) => c.dataset.progress).join(",");
  if (!ids) return;
  const counts = await (await fetch("/api/progress?ids=" + ids)).json();
  for (const c of cells) {
    const n = counts[c.dataset.progress];
    if (!n) continue;
    const pending = (n.pending || 0) + (n.spooled || 0);
    c.textContent = `${n.done || 0} done, ${n.failed || 0} failed, ${pending} pending, ` +
      `${n.cancelled || 0} cancelled`;
    const s = document.querySelector(`[data-status="${c.dataset.progress}"]`);
    const was = s.textContent;
    s.textContent = (was === "cancelled" && !pending) || n.cancelled ? "cancelled"
      : pending ? "running" : n.failed ? "failed" : "done";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (window.Plotly) drawPlots();
  if (document.querySelector("[data-progress]")) {
    refreshProgress();
    setInterval(refreshProgress, 2000);
  }
});
