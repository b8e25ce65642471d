/* The desk's small enhancements; every page works without this file.
 * - The scan field (checkout) keeps the focus, so a keyboard-wedge barcode scanner can scan book after book:
 *   after a page load and whenever the clerk clicks somewhere that is not a field, link or button.
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
