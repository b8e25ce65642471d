/* The desk's small enhancements; every page works without this file.
 * - The scan field (checkout) keeps the focus, so a keyboard-wedge barcode scanner can scan book after book:
 *   after a page load and whenever the clerk clicks somewhere that is not a field, link or button.
 *   Each scan is answered as JSON and appended as a line without a reload (a plain POST without this file).
 * - The patron lookup suggests patrons as the clerk types (a datalist filled from /rentals/desk/patrons/suggest/);
 *   choosing a suggestion opens the patron.
 * - "Print" buttons print the receipt.
 */
(function () {
  "use strict";
  var scan = document.getElementById("id_barcode");
  if (scan && scan.form && scan.form.id === "scan-form") {
    scan.focus();
    document.addEventListener("click", function (e) {
      var t = e.target;
      if (t.closest && !t.closest("a, button, input, select, textarea, label, summary")) {
        scan.focus();
      }
    });
    if (window.fetch && window.FormData) {
      enhanceScans(scan.form, scan);
    }
  }

  /* Scan, scan, scan without a reload: each scan is posted with "Accept: application/json" and its answer's line
   * appended to the session's lines (the loans table and the blocks replaced by the answer's). Scans are sent one after another
   * in the order they were typed (a wedge scanner can be faster than the server); the field is emptied and keeps
   * the focus at once. An answer that is not JSON (the session ended, say) falls back to the plain form. */
  function enhanceScans(form, field) {
    var lines = document.getElementById("checkout-lines");
    var loans = document.getElementById("loans-section");
    var blocks = document.getElementById("blocks-section");
    var queue = Promise.resolve();
    function addLine(line) {
      var li = document.createElement("li");
      li.className = line.ok ? "ok" : "refused";
      if (!line.ok) {
        var strong = document.createElement("strong");
        strong.textContent = "Refused:";
        li.appendChild(strong);
        li.appendChild(document.createTextNode(" "));
      }
      li.appendChild(document.createTextNode(line.text));
      lines.appendChild(li);
      var hint = document.getElementById("lines-hint");
      if (hint) {
        hint.remove();
      }
    }
    form.addEventListener("submit", function (e) {
      var body = new FormData(form);
      if (!String(body.get("barcode") || "").trim()) {
        e.preventDefault();
        field.focus();
        return;
      }
      e.preventDefault();
      field.value = "";
      field.focus();
      form.setAttribute("aria-busy", "true");
      queue = queue.then(function () {
        return fetch(form.action, {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { Accept: "application/json" }
        }).then(function (r) {
          var type = r.headers.get("Content-Type") || "";
          if (type.indexOf("application/json") !== 0) {
            throw new Error("not a scan answer");
          }
          return r.json();
        }).then(function (data) {
          if (data.line) {
            addLine(data.line);
          } else {
            addLine({ ok: false, text: data.message || "Not lent." });
          }
          if (data.loans_html && loans) {
            loans.innerHTML = data.loans_html;
          }
          if (typeof data.blocks_html === "string" && blocks) {
            blocks.innerHTML = data.blocks_html;
          }
        }).catch(function () {
          field.value = body.get("barcode");
          HTMLFormElement.prototype.submit.call(form);
        }).then(function () {
          form.removeAttribute("aria-busy");
        });
      });
    });
  }

  var q = document.getElementById("patron-q");
  var list = document.getElementById("patron-suggestions");
  if (q && list && window.fetch) {
    var urls = {};
    var timer = null;
    q.addEventListener("input", function () {
      var text = q.value.trim();
      if (urls[text]) {
        window.location.assign(urls[text]);
        return;
      }
      clearTimeout(timer);
      if (text.length < 2) {
        return;
      }
      timer = setTimeout(function () {
        fetch(q.dataset.suggest + "?q=" + encodeURIComponent(text), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (data) {
            list.textContent = "";
            urls = {};
            data.items.forEach(function (item) {
              var opt = document.createElement("option");
              opt.value = item.label;
              urls[item.label] = item.url;
              list.appendChild(opt);
            });
          })
          .catch(function () { /* no suggestions: the form still works */ });
      }, 150);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
})();
