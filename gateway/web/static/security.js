// The security console's only script: shows every time in the viewer's
// own time zone and language, and tells the filters that zone so that a
// typed wall time means the viewer's time; reloads a page whose check is
// still running. Without it the pages still work, in UTC.
(function () {
  "use strict";
  // A check still running (the integrity page's first pass over a big
  // log, the policy's tests) shows its progress; look again shortly.
  var pending = document.querySelector("[data-refresh]");
  if (pending) {
    setTimeout(function () {
      location.reload();
    }, 1000 * (parseInt(pending.getAttribute("data-refresh"), 10) || 2));
  }
  var main = document.getElementById("security");
  var lang = (main && main.getAttribute("data-lang")) || document.documentElement.lang || "en";
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(lang, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  } catch (e) {
    return;
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var d = new Date(times[i].getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      times[i].title = times[i].textContent;
      times[i].textContent = fmt.format(d);
    }
  }
  var tz = document.querySelectorAll("input.tz");
  for (var j = 0; j < tz.length; j++) {
    if (!tz[j].value) {
      tz[j].value = String(new Date().getTimezoneOffset());
    }
  }
})();
