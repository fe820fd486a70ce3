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

  const ratios = document.getElementById("health-chart-ratios");
  if (ratios) {
    new Chart(ratios, {
      data: {
        labels: data.labels,
        datasets: [
          line("Coverage", data.coverage, "#1f3a5f"),
          line("Accuracy", data.accuracy, "#198754"),
          line("Completeness", data.completeness, "#6f42c1", { borderDash: [6, 4] }),
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: { tooltip: { callbacks: { label: (ctx) => ctx.dataset.label + ": " + number(ctx.raw, 1) + " %" } } },
        scales: { x: xAxis, y: { min: 0, max: 100, title: { display: true, text: "%" } } },
      },
    });
  }
  const counts = document.getElementById("health-chart-counts");
  if (counts) {
    new Chart(counts, {
      data: {
        labels: data.labels,
        datasets: [
          line("Unregistered devices", data.unregistered, "#fd7e14"),
          line("Stale CIs", data.stale, "#dc3545"),
          line("Duplicate candidates", data.duplicates, "#6c757d", { borderDash: [6, 4] }),
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: { tooltip: { callbacks: { label: (ctx) => ctx.dataset.label + ": " + number(ctx.raw, 0) } } },
        scales: { x: xAxis, y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
})();
