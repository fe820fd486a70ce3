// Governance pages: the agenda's decision form (show the fields a decision needs) and the
// practice dashboard's charts (data from the json_script element, Chart.js from static/vendor).
(function () {
  "use strict";

  // --- Decision form: revisit date for "defer", owner for "accept"/"assign" -------------------
  function syncMinuteForm(form) {
    const kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    form.querySelectorAll("[data-gov-show]").forEach(function (el) {
      const kinds = el.dataset.govShow.split(" ");
      el.hidden = kinds.indexOf(kind.value) === -1;
    });
  }
  function initMinuteForms(root) {
    root.querySelectorAll("[data-gov-minute-form]").forEach(function (form) {
      syncMinuteForm(form);
      const kind = form.querySelector("select[name=kind]");
      if (kind && !kind.dataset.govBound) {
        kind.dataset.govBound = "1";
        kind.addEventListener("change", function () { syncMinuteForm(form); });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { initMinuteForms(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    initMinuteForms(event.detail.elt.parentNode || document);
    const textarea = event.detail.elt.querySelector && event.detail.elt.querySelector("textarea");
    if (textarea) textarea.focus();
  });

  // --- Dashboard charts ----------------------------------------------------------------------------
  const dataEl = document.getElementById("gov-chart-data");
  if (!dataEl || typeof Chart === "undefined") return;
  const data = JSON.parse(dataEl.textContent);
  const navy = "#1f3a5f";
  const palette = ["#1f3a5f", "#0d6efd", "#20c997", "#ffc107", "#dc3545", "#6f42c1", "#fd7e14", "#6c757d",
                   "#198754", "#0dcaf0", "#adb5bd"];
  const colours = {
    quick_win: "#198754", major_project: "#0d6efd", fill_in: "#6c757d", thankless: "#dc3545",
    successful: "#198754", partly_successful: "#20c997", unsuccessful: "#dc3545", withdrawn: "#6c757d",
  };
  const colourFor = (keys) => keys.map((k, i) => colours[k] || palette[i % palette.length]);
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  const integerAxis = { beginAtZero: true, ticks: { precision: 0 } };

  function chart(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, config);
  }
  function empty(series) { return series.values.every((v) => v === 0); }
  function doughnut(id, series) {
    const hasData = !empty(series);
    chart(id, {
      type: "doughnut",
      data: {
        labels: series.labels,
        datasets: [{
          data: hasData ? series.values : series.values.map(() => 0),
          backgroundColor: colourFor(series.keys),
        }],
      },
      options: { plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } } },
    });
    if (!hasData) {
      const canvas = document.getElementById(id);
      canvas.insertAdjacentHTML("afterend", '<p class="small text-body-secondary text-center">No data yet.</p>');
    }
  }

  chart("chart-flow", {
    type: "bar",
    data: {
      labels: data.months,
      datasets: [
        { label: "Identified", data: data.created, backgroundColor: "#8fb3e0" },
        { label: "Closed", data: data.closed, backgroundColor: navy },
      ],
    },
    options: { scales: { y: integerAxis }, plugins: { legend: { position: "bottom" } } },
  });
  chart("chart-status", {
    type: "bar",
    data: {
      labels: data.status.labels,
      datasets: [{ label: "Items", data: data.status.values, backgroundColor: navy }],
    },
    options: { scales: { y: integerAxis }, plugins: { legend: { display: false } } },
  });
  doughnut("chart-quadrant", data.quadrant);
  doughnut("chart-outcome", data.outcome);
  chart("chart-benefit", {
    type: "bar",
    data: {
      labels: data.benefit.labels,
      datasets: [{ label: "Closed items", data: data.benefit.values, backgroundColor: "#20c997" }],
    },
    options: { indexAxis: "y", scales: { x: integerAxis }, plugins: { legend: { display: false } } },
  });
})();
