// authgate console: progressive enhancement only. Every page works without
// it; with it, token expiries count down, copy buttons copy, and a run page
// follows its run (polling a fragment of itself) until the run finishes.
"use strict";
(function () {
  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      var s = Math.round((t - now) / 1000), past = s < 0;
      s = Math.abs(s);
      var txt = s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
      el.textContent = past ? "expired " + txt + " ago" : "in " + txt;
    });
  }
  function copyButtons(root) {
    root.querySelectorAll("button.copy").forEach(function (b) {
      b.addEventListener("click", function () {
        var input = document.getElementById(b.getAttribute("data-copy"));
        if (!input) return;
        input.select();
        var done = function () { b.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
        } else { document.execCommand("copy"); done(); }
      });
    });
  }
  function follow() {
    var live = document.getElementById("run-live");
    if (!live || !live.getAttribute("data-poll")) return;
    var url = live.getAttribute("data-poll");
    var tick = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var next = doc.getElementById("run-live");
          if (!next) return;
          var cur = document.getElementById("run-live");
          // Keep focus and the reconnect link's copy state when nothing changed.
          if (cur.innerHTML !== next.innerHTML) {
            cur.replaceWith(next);
            copyButtons(next);
          }
          if (next.getAttribute("data-poll")) setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    setTimeout(tick, 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    countdowns();
    setInterval(countdowns, 1000);
    copyButtons(document);
    follow();
  });
})();
