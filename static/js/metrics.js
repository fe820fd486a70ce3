// The metrics page: one chart of the series (value, and the count of records behind each point).
// Data from the json_script element; Chart.js from static/vendor. No CDN.
(function () {
  "use strict";
  const dataEl = document.getElementById("metrics-chart-data");
  const canvas = document.getElementById("metrics-chart");
  if (!dataEl || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(dataEl.textContent);
  if (!data.labels) return;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  new Chart(canvas, {
    data: {
      labels: data.labels,
      datasets: [
        {
          type: data.kind,
          label: data.label + " (" + data.unit + ")",
          data: data.values,
          borderColor: "#1f3a5f",
          backgroundColor: data.kind === "bar" ? "#1f3a5f" : "rgba(31,58,95,0.15)",
          spanGaps: false,
          yAxisID: "y",
        },
        {
          type: "bar",
          label: "records",
          data: data.counts,
          backgroundColor: "rgba(108,117,125,0.25)",
          yAxisID: "count",
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        y: { beginAtZero: true, title: { display: true, text: data.unit } },
        count: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } },
      },
    },
  });
})();
