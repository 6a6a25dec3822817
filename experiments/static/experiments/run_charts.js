// The run page: a plotly panel per logged metric from the server's downsampled series (json_script
// "run-panels"), redrawn when the x axis, log scale or smoothing changes; zooming one panel's x range zooms
// all. While the run is live the series are polled and the panels redrawn in place (a zoom survives the
// redraw), and panels for metrics that appear later are added. Below, the attempt's whole log, read in
// chunks from the logs API and followed while the run is live.
(function () {
  var dataNode = document.getElementById("run-panels");
  if (!dataNode) return;
  var series = JSON.parse(dataNode.textContent);
  var xSelect = document.getElementById("chart-x");
  var logBox = document.getElementById("chart-log");
  var smoothSelect = document.getElementById("chart-smooth");
  var chartsCard = document.getElementById("run-charts");
  var grid = chartsCard.querySelector(".charts-grid");
  var syncing = false;
  var POLL_MS = 5000;

  // Exponential moving average with bias correction, as the study page smooths on the server.
  function ema(values, weight) {
    if (!weight) return values;
    var running = 0;
    return values.map(function (value, index) {
      running = weight * running + (1 - weight) * value;
      return running / (1 - Math.pow(weight, index + 1));
    });
  }

  function panels() { return document.querySelectorAll("#run-charts .panel"); }

  function draw() {
    var axis = xSelect.value;
    var weight = parseFloat(smoothSelect.value) || 0;
    panels().forEach(function (panel) {
      var target = panel.querySelector(".panel-chart");
      var points = series[panel.dataset.metric];
      if (!target || !points) return;
      var x = points[axis] || points.step;  // tokens or time may be missing in old runs: fall back to steps
      var traces = [{ type: "scatter", mode: "lines", x: x, y: points.value, name: "raw",
                      line: { color: weight ? "rgba(58,79,216,0.25)" : "#3a4fd8", width: weight ? 1 : 2 } }];
      if (weight) traces.push({ type: "scatter", mode: "lines", x: x, y: ema(points.value, weight), name: "smoothed",
                                line: { color: "#3a4fd8", width: 2 } });
      // uirevision: a poll's redraw keeps the user's zoom; changing the x axis or log scale resets it.
      var layout = { height: 260, margin: { l: 56, r: 12, t: 8, b: 40 }, showlegend: false, hovermode: "x unified",
                     uirevision: axis + (logBox.checked ? "-log" : ""),
                     paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
                     xaxis: { title: { text: points[axis] ? xSelect.selectedOptions[0].text : "step" }, gridcolor: "#e3e6eb" },
                     yaxis: { type: logBox.checked ? "log" : "linear", gridcolor: "#e3e6eb", exponentformat: "power" } };
      Plotly.react(target, traces, layout, { displaylogo: false, responsive: true });
      if (!target.dataset.synced) {
        target.dataset.synced = "1";
        target.on("plotly_relayout", function (change) { shareZoom(target, change); });
      }
    });
  }

  function shareZoom(source, change) {
    if (syncing) return;
    var update = {};
    if (change["xaxis.autorange"]) update["xaxis.autorange"] = true;
    else if ("xaxis.range[0]" in change) update["xaxis.range"] = [change["xaxis.range[0]"], change["xaxis.range[1]"]];
    else return;
    syncing = true;
    var pending = [];
    document.querySelectorAll("#run-charts .panel-chart").forEach(function (other) {
      if (other !== source) pending.push(Plotly.relayout(other, update));
    });
    Promise.all(pending).then(function () { syncing = false; });
  }

  [xSelect, logBox, smoothSelect].forEach(function (control) { control.addEventListener("change", draw); });
  draw();

  // ---- live: poll the series while the run is live
  function panelFor(name) {
    var found = null;
    panels().forEach(function (panel) { if (panel.dataset.metric === name) found = panel; });
    return found;
  }

  function addPanel(info) {
    var panel = document.createElement("div");
    panel.className = "panel";
    panel.dataset.metric = info.name;
    var heading = document.createElement("h3");
    heading.className = "small";
    heading.appendChild(document.createTextNode(info.title + " "));
    var name = document.createElement("span");
    name.className = "muted mono";
    name.textContent = info.name;
    heading.appendChild(name);
    panel.appendChild(heading);
    grid.appendChild(panel);
    return panel;
  }

  function showEmpty(panel, text) {
    var empty = panel.querySelector(".chart-empty");
    if (!empty) {
      empty = document.createElement("div");
      empty.className = "chart-empty";
      panel.appendChild(empty);
    }
    empty.textContent = text;
  }

  function update(payload) {
    payload.panels.forEach(function (info) {
      var panel = panelFor(info.name) || addPanel(info);
      if (!info.series) { showEmpty(panel, info.empty); return; }
      series[info.name] = info.series;
      var empty = panel.querySelector(".chart-empty");
      if (empty) empty.remove();
      if (!panel.querySelector(".panel-chart")) {
        var target = document.createElement("div");
        target.className = "panel-chart";
        target.setAttribute("role", "img");
        target.setAttribute("aria-label", info.title);
        panel.appendChild(target);
      }
    });
    draw();
  }

  function poll() {
    fetch(chartsCard.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (payload) {
        update(payload);
        chartsCard.dataset.live = payload.live ? "1" : "";
        if (payload.live) setTimeout(poll, POLL_MS);
      })
      .catch(function () { setTimeout(poll, POLL_MS * 3); });  // a blip (restart, network): try again, slower
  }
  if (chartsCard.dataset.live) setTimeout(poll, POLL_MS);

  // ---- the log
  var card = document.getElementById("run-log-card");
  var output = document.getElementById("run-log");
  var attemptSelect = document.getElementById("log-attempt");
  var follow = document.getElementById("log-follow");
  var offset = 0, timer = null, generation = 0;

  function read() {
    var mine = generation;
    var url = card.dataset.url + "?offset=" + offset + (attemptSelect.value ? "&attempt=" + attemptSelect.value : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (chunk) {
        if (mine !== generation) return;
        if (offset === 0) output.textContent = "";
        if (chunk.text && output.querySelector(".muted")) output.textContent = "";
        output.appendChild(document.createTextNode(chunk.text));
        offset = chunk.next_offset;
        if (!output.textContent) output.innerHTML = '<span class="muted">No output yet.</span>';
        if (chunk.complete) return;  // the attempt ended and all of its log is shown
        if (chunk.text) { read(); return; }  // more pages of a long log, or more lines of a live one
        if (follow.checked) { output.scrollTop = output.scrollHeight; timer = setTimeout(read, 2000); }
      })
      .catch(function () { if (mine === generation) output.textContent = "The log could not be read."; });
  }

  function restart() {
    generation += 1;
    clearTimeout(timer);
    offset = 0;
    read();
  }
  if (attemptSelect.options.length) {
    attemptSelect.addEventListener("change", restart);
    follow.addEventListener("change", function () { if (follow.checked) { clearTimeout(timer); read(); } });
    read();
  } else {
    output.innerHTML = '<span class="muted">No attempt yet.</span>';
  }
})();
