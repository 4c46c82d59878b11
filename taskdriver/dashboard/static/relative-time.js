// Keeps the dashboard's "3 min ago" words current between refreshes. The server writes
// them (formatting.relative); this says the same thing from each <time datetime=…>.
(function () {
  "use strict";
  var units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  function relative(secondsAgo) {
    var span = Math.abs(secondsAgo);
    if (span < 5) { return "just now"; }
    for (var i = 0; i < units.length; i++) {
      if (span >= units[i][0]) {
        var amount = Math.floor(span / units[i][0]) + " " + units[i][1];
        return secondsAgo < 0 ? "in " + amount : amount + " ago";
      }
    }
    return "just now";
  }
  function refresh() {
    var now = Date.now();
    document.querySelectorAll("time[datetime]").forEach(function (node) {
      var moment = Date.parse(node.getAttribute("datetime"));
      if (!isNaN(moment)) { node.textContent = relative((now - moment) / 1000); }
    });
  }
  setInterval(refresh, 15000);
}());
