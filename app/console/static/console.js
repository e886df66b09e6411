/* Rapport console: draws the usage charts (uPlot) from the page's JSON data. No inline script
   runs anywhere (the pages' CSP forbids it): everything the pages do beyond htmx is here. */
(function () {
  "use strict";
  var PALETTE = ["#1d4ed8", "#b45309", "#047857", "#be123c", "#6d28d9", "#0e7490", "#4d7c0f", "#9d174d"];

  function drawCharts() {
    var source = document.getElementById("usage-data");
    if (!source || typeof uPlot === "undefined") { return; }
    var report = JSON.parse(source.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      if (element.dataset.drawn) { return; }
      element.dataset.drawn = "1";
      var field = element.dataset.chart;
      var data = [report.buckets];
      var series = [{ label: "time (UTC)", value: function (u, v) { return v == null ? "" : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " "); } }];
      report.series.forEach(function (s, i) {
        data.push(s[field]);
        var color = PALETTE[i % PALETTE.length];
        series.push({ label: s.label, stroke: color, width: 2, fill: color + "22", points: { show: report.buckets.length < 40 } });
      });
      var width = Math.max(element.clientWidth, 320);
      var options = {
        width: width, height: 280, series: series, tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
        axes: [{}, { label: field === "tokens" ? "tokens" : "requests", size: 70 }],
        scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
        legend: { live: true }
      };
      var chart = new uPlot(options, data, element);
      window.addEventListener("resize", function () { chart.setSize({ width: Math.max(element.clientWidth, 320), height: 280 }); });
    });
  }

  document.addEventListener("DOMContentLoaded", drawCharts);
  document.addEventListener("htmx:afterSettle", drawCharts);
})();
