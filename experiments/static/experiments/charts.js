// Draws the server-built plotly figures: <div data-figure="ID"> + <script type="application/json" id="ID">.
// Runs on page load and after every htmx swap; figures swapped in by a live study's polling are new
// elements, so drawing only the not-yet-drawn ones redraws exactly what changed.
(function () {
  function draw() {
    document.querySelectorAll("[data-figure]:not([data-drawn])").forEach(function (target) {
      var figure = JSON.parse(document.getElementById(target.dataset.figure).textContent);
      target.dataset.drawn = "1";
      Plotly.newPlot(target, figure.data, figure.layout, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
    });
  }
  draw();
  document.body.addEventListener("htmx:afterSettle", draw);
})();
