// The import job page's live progress bar: polls the job's progress JSON once a second and reloads the page
// (which then shows the results) when the job is done. Without JavaScript the page refreshes itself instead.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) return;
  var url = box.getAttribute("data-url");
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { setTimeout(tick, 3000); return; }
        if (p.done) { window.location.reload(); return; }
        document.getElementById("progress-bar").value = p.percent;
        text("progress-bar", p.percent + "%");
        text("progress-phase", p.phase.charAt(0).toUpperCase() + p.phase.slice(1));
        text("progress-rows", p.rows_validated + " of " + p.rows_total + " rows checked");
        text("progress-rate", p.rate ? p.rate + " rows/s" : "");
        text("progress-left", p.seconds_left !== null ? " · about " + p.seconds_left + " s left" : "");
        setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
