// Live access events on the supervisor's console: rows arrive over
// server-sent events and are put on top of the table.
(function () {
  var body = document.getElementById("events-body");
  if (!body || !window.EventSource) return;
  var state = document.getElementById("stream-state");
  var src = new EventSource(body.getAttribute("data-stream"));
  src.onopen = function () { if (state) state.textContent = state.getAttribute("data-live"); };
  src.onerror = function () { if (state) state.textContent = state.getAttribute("data-lost"); };
  src.onmessage = function (m) {
    var e = JSON.parse(m.data);
    var tr = document.createElement("tr");
    [e.at_local, e.device, e.kind_label, e.card || "", e.zone || "", e.reason_label || "", e.clock_ok ? "" : e.clock_label].forEach(function (text) {
      var td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    });
    if (e.kind === "denied") tr.className = "denied";
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
  };
})();
