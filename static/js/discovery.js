// The CMDB health page (/discovery/): two trend charts from the daily accuracy snapshots — the
// ratios (coverage, accuracy, completeness, in %) and the counts (unregistered devices, stale CIs,
// duplicate candidates). Data from the json_script element; Chart.js from static/vendor. No CDN.
(function () {
  "use strict";
  const dataEl = document.getElementById("health-chart-data");
  if (!dataEl || typeof Chart === "undefined") return;
  const data = JSON.parse(dataEl.textContent);
  if (!data.labels || !data.labels.length) return;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;

  function line(label, values, colour, extra) {
    return Object.assign(
      { type: "line", label: label, data: values, borderColor: colour, backgroundColor: colour,
        borderWidth: 2, pointRadius: data.labels.length > 31 ? 0 : 3, spanGaps: false, tension: 0 },
      extra || {}
    );
  }
  const number = (value, decimals) =>
    value === null || value === undefined
      ? "—"
      : Number(value).toLocaleString(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  const xAxis = { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } };

  // One trend chart: its datasets, the unit the tooltip adds, decimals, and its y axis.
  function trend(id, datasets, unit, decimals, y) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, {
      data: { labels: data.labels, datasets: datasets },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: {
          tooltip: { callbacks: { label: (ctx) => ctx.dataset.label + ": " + number(ctx.raw, decimals) + unit } },
        },
        scales: { x: xAxis, y: y },
      },
    });
  }
  const dashed = { borderDash: [6, 4] };
  trend(
    "health-chart-ratios",
    [
      line("Coverage", data.coverage, "#1f3a5f"),
      line("Accuracy", data.accuracy, "#198754"),
      line("Completeness", data.completeness, "#6f42c1", dashed),
    ],
    " %",
    1,
    { min: 0, max: 100, title: { display: true, text: "%" } }
  );
  trend(
    "health-chart-counts",
    [
      line("Unregistered devices", data.unregistered, "#fd7e14"),
      line("Stale CIs", data.stale, "#dc3545"),
      line("Duplicate candidates", data.duplicates, "#6c757d", dashed),
    ],
    "",
    0,
    { beginAtZero: true, ticks: { precision: 0 } }
  );
})();
