// Every console page: times in TIMEZONE or the browser's zone (a toggle, remembered), and
// live lists and job pages: while a page shows unfinished jobs (main[data-live]), read it
// again every few seconds and put its #live-region in place, until paused.
(function () {
  "use strict";
  var PERIOD_MS = 3000;
  var ZONE_KEY = "vc-console-zone";
  var PAUSE_KEY = "vc-console-paused";
  var zoneButton = document.getElementById("zone-toggle");
  var liveButton = document.getElementById("live-toggle");
  var main = document.getElementById("main");

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // The server's short format (voicecall/formats/shown.py), in the browser's zone.
  function short(date) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23", timeZoneName: "short"
    }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    var year = date.getFullYear() === new Date().getFullYear() ? "" : " " + parts.year;
    return parts.day + " " + parts.month + year + " " + parts.hour + ":" + parts.minute + ":" +
      parts.second + " " + parts.timeZoneName;
  }
  function browserZone() { return localStorage.getItem(ZONE_KEY) === "browser"; }
  function showTimes(root) {
    var local = browserZone();
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      if (!node.dataset.server) { node.dataset.server = node.textContent; }
      var date = new Date(node.getAttribute("datetime"));
      node.textContent = local && !isNaN(date) ? short(date) : node.dataset.server;
    });
    if (zoneButton) {
      zoneButton.setAttribute("aria-pressed", String(local));
      zoneButton.textContent = "Times: " + (local ? "browser (" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")" : zoneButton.dataset.zone);
    }
  }
  if (zoneButton) {
    zoneButton.addEventListener("click", function () {
      localStorage.setItem(ZONE_KEY, browserZone() ? "server" : "browser");
      showTimes(document);
    });
  }
  showTimes(document);
  window.vcShowTimes = showTimes;

  function paused() { return sessionStorage.getItem(PAUSE_KEY) === "1"; }
  function showPause() {
    if (!liveButton) { return; }
    liveButton.setAttribute("aria-pressed", String(paused()));
    liveButton.textContent = paused() ? "Resume updates" : "Pause updates";
  }
  function refresh() {
    if (!main || !main.dataset.live) { return; }
    if (paused()) { setTimeout(refresh, PERIOD_MS); return; }
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (r.ok) { return r.text(); } throw new Error(String(r.status)); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var region = document.getElementById("live-region");
        var next = fresh.getElementById("live-region");
        if (region && next && !paused()) {
          var open = Array.from(region.querySelectorAll("details[open]")).map(function (d) { return d.id; });
          region.replaceChildren.apply(region, Array.from(next.childNodes).map(function (n) { return document.importNode(n, true); }));
          open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
          showTimes(region);
          main.dataset.updated = String(Date.now());
        }
        var still = fresh.getElementById("main");
        if (!still || !still.dataset.live) { delete main.dataset.live; }
      })
      .catch(function () { /* keep what is shown; try again next time */ })
      .finally(function () { if (main.dataset.live) { setTimeout(refresh, PERIOD_MS); } });
  }
  if (liveButton) {
    liveButton.addEventListener("click", function () {
      sessionStorage.setItem(PAUSE_KEY, paused() ? "0" : "1");
      showPause();
    });
  }
  showPause();
  setTimeout(refresh, PERIOD_MS);
})();
