// The metrics page: one chart of the series (value, and the count of records behind each point).
// Data from the json_script element; Chart.js from static/vendor. No CDN.
// Incomplete points (records still open, or the period not ended: their value will change) are
// drawn hollow on a dashed line, and their bars hatched; the tooltip says why.
(function () {
  "use strict";
  const dataEl = document.getElementById("metrics-chart-data");
  const canvas = document.getElementById("metrics-chart");
  if (!dataEl || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(dataEl.textContent);
  if (!data.labels) return;
  const incomplete = data.incomplete || [];
  const why = data.why || [];
  const navy = "#1f3a5f";
  const grey = "rgba(108,117,125,0.25)";

  // A diagonal hatch over a colour, as a canvas pattern (bars of incomplete points).
  function hatch(colour) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const ctx = tile.getContext("2d");
    ctx.fillStyle = "rgba(255,255,255,0.9)";
    ctx.fillRect(0, 0, 8, 8);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(-2, 10);
    ctx.lineTo(10, -2);
    ctx.moveTo(-2, 2);
    ctx.lineTo(2, -2);
    ctx.moveTo(6, 10);
    ctx.lineTo(10, 6);
    ctx.stroke();
    return ctx.createPattern(tile, "repeat");
  }
  const perPoint = (complete, partial) => data.labels.map((_l, i) => (incomplete[i] ? partial : complete));
  const number = (value) =>
    value === null || value === undefined
      ? "—"
      : Number(value).toLocaleString(undefined, {
          minimumFractionDigits: data.decimals,
          maximumFractionDigits: data.decimals,
        });

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  const line = data.kind === "line";
  new Chart(canvas, {
    data: {
      labels: data.labels,
      datasets: [
        {
          type: data.kind,
          label: data.label + " (" + data.unit + ")",
          data: data.values,
          borderColor: navy,
          backgroundColor: line ? "rgba(31,58,95,0.15)" : perPoint(navy, hatch(navy)),
          borderWidth: line ? 2 : perPoint(0, 1),
          borderDash: [],
          // a segment leading to an incomplete point is dashed; the point itself is hollow
          segment: { borderDash: (ctx) => (incomplete[ctx.p1DataIndex] ? [6, 4] : undefined) },
          pointBackgroundColor: perPoint(navy, "#fff"),
          pointBorderColor: navy,
          pointRadius: perPoint(3, 5),
          pointBorderWidth: perPoint(1, 2),
          spanGaps: false,
          yAxisID: "y",
        },
        {
          type: "bar",
          label: "records",
          data: data.counts,
          backgroundColor: perPoint(grey, hatch("rgba(108,117,125,0.55)")),
          yAxisID: "count",
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: {
          labels: {
            // the legend names the marking too
            generateLabels: (chart) => {
              const items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
              if (incomplete.some(Boolean)) {
                items.push({
                  // short enough for a phone; the note above the chart says why
                  text: "incomplete (will change)",
                  fillStyle: hatch(navy),
                  strokeStyle: navy,
                  lineDash: [6, 4],
                  lineWidth: 2,
                  hidden: false,
                  datasetIndex: -1,
                });
              }
              return items;
            },
          },
          onClick: (event, item, legend) => {
            if (item.datasetIndex >= 0) Chart.defaults.plugins.legend.onClick.call(legend, event, item, legend);
          },
        },
        tooltip: {
          callbacks: {
            label: (ctx) =>
              ctx.datasetIndex === 0
                ? data.label + ": " + number(ctx.raw) + " " + data.unit
                : "records: " + Number(ctx.raw).toLocaleString(),
            footer: (items) => {
              const i = items.length ? items[0].dataIndex : -1;
              return i >= 0 && incomplete[i] ? "Incomplete: " + why[i] + " (the value will change)" : "";
            },
          },
        },
      },
      scales: {
        y: { beginAtZero: true, title: { display: true, text: data.unit } },
        count: {
          position: "right",
          beginAtZero: true,
          grid: { drawOnChartArea: false },
          ticks: { precision: 0 },
          title: { display: true, text: "records" },
        },
      },
    },
  });
})();
