// The overview's live refresh: every few seconds, read /console/overview.json and put each
// figure in place. Without JavaScript the page is still complete (reload to refresh).
(function () {
  "use strict";
  var PERIOD_MS = 2000;
  function set(selector, text) {
    var node = document.querySelector(selector);
    if (node && node.textContent !== String(text)) { node.textContent = String(text); }
  }
  // A problem count (failed, rejected, expired, dead letters) is highlighted when above 0.
  function flag(selector) {
    var node = document.querySelector(selector);
    var cell = node && node.closest("td[data-problem='1']");
    if (cell) { cell.classList.toggle("problem", node.textContent !== "0"); }
  }
  function rows(tableId, entries, empty) {
    var body = document.querySelector("#" + tableId + " tbody");
    if (!body) { return; }
    body.replaceChildren();
    if (!entries.length) { entries = [[empty, ""]]; }
    entries.forEach(function (entry) {
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      th.scope = "row"; th.textContent = entry[0];
      var td = document.createElement("td");
      td.textContent = String(entry[1]);
      tr.append(th, td); body.append(tr);
    });
  }
  // The sends-per-minute bars: one rect per minute, scaled to the busiest minute.
  function bars(perMinute) {
    var rects = document.querySelectorAll("#rate rect");
    var top = Math.max(1, Math.max.apply(null, perMinute));
    rects.forEach(function (rect, i) {
      var h = 20 * (perMinute[i] || 0) / top;
      rect.setAttribute("y", String(20 - h));
      rect.setAttribute("height", String(h));
    });
    set("#rate-title", "Calls sent in each minute of the last hour, oldest first; the busiest minute: " + Math.max.apply(null, perMinute));
  }
  function show(data) {
    var at = document.querySelector("time[data-field=at]");
    if (at) { at.setAttribute("datetime", data.at); at.title = data.at; at.textContent = data.at_text; delete at.dataset.server; }
    if (window.vcShowTimes) { window.vcShowTimes(document); }
    set("[data-field=workers_alive]", data.workers_alive);
    set("[data-field=sent]", data.last_hour.sent);
    set("[data-field=sent_per_minute]", data.last_hour.sent_per_minute);
    set("[data-field=schedule_size]", data.schedule.size);
    if (data.balance) {
      set("[data-field=balance]", Math.round(data.balance.vnd).toLocaleString("en") + " VND");
      set("[data-field=balance_age]", "read " + data.balance.age_s + " s ago by a worker");
    }
    Object.keys(data.jobs_by_state).forEach(function (state) {
      set("[data-state='" + state + "']", data.jobs_by_state[state]);
      flag("[data-state='" + state + "']");
    });
    data.queues.forEach(function (q) {
      set("[data-queue='" + q.queue + "']", q.depth);
      set("[data-dead='" + q.queue + "']", q.dead_letters);
      flag("[data-dead='" + q.queue + "']");
    });
    rows("endings", Object.entries(data.last_hour.endings), "None yet.");
    bars(data.last_hour.per_minute);
  }
  function refresh() {
    fetch("/console/overview.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (r.ok) { return r.json(); } throw new Error(String(r.status)); })
      .then(show)
      .catch(function () { /* keep the last figures; try again next time */ })
      .finally(function () { setTimeout(refresh, PERIOD_MS); });
  }
  setTimeout(refresh, PERIOD_MS);
})();
