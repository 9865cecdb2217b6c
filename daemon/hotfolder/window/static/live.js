// Live updates: ask the server for the page's changing part and swap it in. The server renders
// it (the same template as the first load), so the browser never builds HTML from data.
// Without JavaScript the page is complete as loaded.
"use strict";
(function () {
  function start() {
    var live = document.getElementById("live");
    if (!live || !live.dataset.poll) return;
    var every = parseInt(live.dataset.every, 10) || 2000;
    var last = null;
    function tick() {
      // Never pull the rug from under someone: no swap while focus is inside the region.
      if (live.contains(document.activeElement) && document.activeElement !== live) {
        setTimeout(tick, every);
        return;
      }
      fetch(live.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.html !== last) {
            last = data.html;
            live.innerHTML = data.html;
          }
        })
        .catch(function () { /* the daemon restarting: try again next tick */ })
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
