// Draws each chart of the page with the vendored uPlot from the JSON block it names
// (<div class="chart" data-spec="JSON">, escaped as any attribute). Amounts arrive as exact decimal text; they become
// numbers here only to place points on the canvas. The tables carry the exact figures.
(function () {
  "use strict";
  var PALETTE = ["#1f5fbf", "#c0392b", "#1e8449", "#8e44ad", "#d68910", "#16a085", "#2c3e50"];
  window.smsreconCharts = [];

  function toNumber(text) { return text === null ? null : Number(text); }

  function draw(box) {
    var spec = JSON.parse(box.getAttribute("data-spec"));
    var title = document.createElement("div");
    title.className = "chart-title";
    title.textContent = spec.title;  // text, never markup
    box.appendChild(title);
    var xs = spec.x.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
    var data = [xs];
    var series = [{}];
    var points = 0;
    spec.series.forEach(function (s, i) {
      var values = s.values.map(toNumber);
      values.forEach(function (v) { if (v !== null) { points += 1; } });
      data.push(values);
      series.push({
        label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2,
        points: { show: true, size: 5 }, spanGaps: false,
        value: spec.percent
          ? function (u, v) { return v === null ? "—" : (v * 100).toFixed(2) + " %"; }
          : function (u, v) { return v === null ? "—" : v.toLocaleString("en-US", {maximumFractionDigits: 4}); }
      });
    });
    if (points === 0) {
      var empty = document.createElement("p");
      empty.className = "chart-empty";
      empty.textContent = "Nothing to draw for this period.";
      box.appendChild(empty);
    }
    var width = Math.max(320, box.clientWidth - 16);
    var opts = {
      width: width, height: 280, series: series,
      scales: { x: { time: true } },
      axes: [{}, spec.percent
        ? { values: function (u, ticks) { return ticks.map(function (t) { return (t * 100).toFixed(0) + " %"; }); } }
        : { size: 70 }],
    };
    var plot = new uPlot(opts, data, box);
    box.setAttribute("data-points", String(points));
    box.setAttribute("data-series", String(spec.series.length));
    window.smsreconCharts.push({ id: box.id, points: points, series: spec.series.length, plot: plot });
  }

  function showPeriodFields() {
    var period = document.getElementById("period");
    if (!period) { return; }
    var custom = period.value === "custom";
    document.querySelectorAll("form.filters .custom").forEach(function (el) { el.hidden = !custom; });
    document.querySelectorAll("form.filters .anchor").forEach(function (el) { el.hidden = custom; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-spec]").forEach(draw);
    var period = document.getElementById("period");
    if (period) { period.addEventListener("change", showPeriodFields); showPeriodFields(); }
    document.body.setAttribute("data-ready", "1");
  });
})();
