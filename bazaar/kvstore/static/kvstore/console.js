// The KV console's live watch: follows a prefix through the session-authenticated long-poll (watch.json),
// appending each change as it arrives. Without this file the page still works: "Newer changes" reloads it.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("kv-watch");
    if (!box || !window.fetch) return;
    var list = document.getElementById("kv-watch-events");
    var status = document.getElementById("kv-watch-status");
    var more = document.getElementById("kv-watch-more");
    var since = box.getAttribute("data-since");
    var prefix = box.getAttribute("data-prefix") || "";
    var entryUrl = box.getAttribute("data-entry");
    if (more) more.hidden = true;
    status.textContent = "Live: waiting for changes after revision " + since + (prefix ? " under " + prefix : "") + ".";

    function add(c) {
      var li = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(c.revision);
      var link = document.createElement("a");
      link.href = entryUrl + "?key=" + encodeURIComponent(c.key);
      link.textContent = c.key;
      li.appendChild(badge);
      li.appendChild(document.createTextNode(" " + c.op + " "));
      li.appendChild(link);
      li.appendChild(document.createTextNode(" v" + c.version));
      list.appendChild(li);
    }

    function poll() {
      var q = "?wait=20&since=" + encodeURIComponent(since) + "&prefix=" + encodeURIComponent(prefix);
      fetch(box.getAttribute("data-url") + q, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          return r.json().then(function (body) { return { ok: r.ok, body: body }; });
        })
        .then(function (res) {
          if (!res.ok) {
            status.textContent = "Stopped: " + (res.body.message || "the watch failed") + " Reload to start again.";
            return;
          }
          res.body.items.forEach(add);
          since = String(res.body.revision);
          status.textContent = "Live: up to revision " + since + (prefix ? " under " + prefix : "") + ".";
          // An empty answer may be the server saying it is busy: pause before asking again.
          if (res.body.items.length) poll();
          else window.setTimeout(poll, 1000);
        })
        .catch(function () {
          status.textContent = "Connection lost; retrying…";
          window.setTimeout(poll, 2000);
        });
    }
    poll();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
