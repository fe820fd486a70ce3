// The item page: indicator charts, htmx error handling, follow-up rows, assessment field hints.
(function () {
  "use strict";

  function styleColor(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // Measurements on a time axis: points spaced by date (a linear scale over epoch milliseconds; no
  // date adapter needed). The ticks and every label come formatted from the server (the UI's date
  // format, in the configured time zone): views/item.py _chart.
  function drawChart(canvas) {
    if (!window.Chart || Chart.getChart(canvas)) return;
    var source = document.getElementById(canvas.dataset.chartData);
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var tickLabels = {};
    data.ticks.forEach(function (tick) { tickLabels[tick.value] = tick.label; });
    var across = function (value) { return [{ x: data.min, y: value }, { x: data.max, y: value }]; };
    var datasets = [{
      label: data.name + (data.unit ? " (" + data.unit + ")" : ""),
      data: data.points,
      borderColor: styleColor("--tk-major", "#0d6efd"),
      backgroundColor: "rgba(13, 110, 253, .12)",
      fill: false,
      cubicInterpolationMode: "monotone", // no overshoot between unevenly spaced points
      pointRadius: 3,
    }];
    if (data.baseline !== null) {
      datasets.push({ label: "Baseline", data: across(data.baseline), borderColor: "#6c757d",
        borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, pointHitRadius: 0, fill: false });
    }
    if (data.target !== null) {
      datasets.push({ label: "Target", data: across(data.target), borderColor: styleColor("--tk-quick-win", "#198754"),
        borderDash: [2, 3], borderWidth: 2, pointRadius: 0, pointHitRadius: 0, fill: false });
    }
    new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        interaction: { mode: "nearest", intersect: false, axis: "x" },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 14, font: { size: 11 } } },
          tooltip: {
            filter: function (item) { return item.datasetIndex === 0; },
            callbacks: {
              title: function (items) { return items.length ? data.labels[items[0].dataIndex] : ""; },
              label: function (item) {
                return data.name + ": " + data.values[item.dataIndex] + (data.unit ? " " + data.unit : "");
              },
            },
          },
        },
        scales: {
          x: {
            type: "linear",
            min: data.min,
            max: data.max,
            afterBuildTicks: function (axis) {
              axis.ticks = data.ticks.map(function (tick) { return { value: tick.value }; });
            },
            ticks: {
              font: { size: 10 },
              maxRotation: 0,
              autoSkip: true,
              callback: function (value) { return tickLabels[value] || ""; },
            },
          },
          y: { grace: "8%", ticks: { font: { size: 10 } } },
        },
      },
    });
  }

  function init(root) {
    root.querySelectorAll("canvas.tk-indicator-chart").forEach(drawChart);
  }

  // Follow-up rows: clone the empty form and bump the formset's TOTAL_FORMS.
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".tk-add-follow-up");
    if (!button) return;
    var form = button.closest("form");
    var prefix = button.dataset.prefix;
    var total = form.querySelector("input[name='" + prefix + "-TOTAL_FORMS']");
    var max = form.querySelector("input[name='" + prefix + "-MAX_NUM_FORMS']");
    var count = parseInt(total.value, 10);
    if (max && count >= parseInt(max.value, 10)) { button.disabled = true; return; }
    var template = form.querySelector("template.tk-follow-up-template");
    var html = template.innerHTML.replace(/__prefix__/g, String(count));
    form.querySelector(".tk-follow-up-rows").insertAdjacentHTML("beforeend", html);
    total.value = count + 1;
  });

  // Assessment: show the owner field for "accept" and the revisit date for "defer".
  document.addEventListener("change", function (event) {
    if (event.target.name !== "decision") return;
    var form = event.target.closest("form");
    form.querySelectorAll("[data-decision]").forEach(function (el) {
      el.classList.toggle("opacity-50", el.dataset.decision !== event.target.value);
    });
  });

  // htmx is loaded with `defer`: listen to its events on the document rather than call it here.
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });

  // Refusals come back with the form and its errors (422) or the conflict (409): show them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 422 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (status === 403) {
      var flash = document.getElementById("item-flash");
      if (flash) {
        var alert = document.createElement("div");
        alert.className = "alert alert-danger py-2";
        alert.setAttribute("role", "alert");
        alert.textContent = event.detail.xhr.responseText || "You may not do this.";
        flash.replaceChildren(alert);
      }
    }
    if (event.detail.shouldSwap && event.detail.target) {
      event.detail.target.querySelectorAll("canvas.tk-indicator-chart").forEach(function (canvas) {
        var chart = window.Chart && Chart.getChart(canvas);
        if (chart) chart.destroy();
      });
    }
  });
})();
