// Draws every server-built plotly figure on the page: <div data-figure="ID"> + <script type="application/json" id="ID">.
(function () {
  function draw(root) {
    root.querySelectorAll("[data-figure]").forEach(function (target) {
      var figure = JSON.parse(document.getElementById(target.dataset.figure).textContent);
      Plotly.newPlot(target, figure.data, figure.layout, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
    });
  }
  draw(document);
})();
