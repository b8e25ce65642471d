// Progressive enhancements, loaded by every page. There is no inline script anywhere (the Content-Security-Policy
// allows scripts from this origin only); every page works without this file.
(function () {
  "use strict";
  // The store's order form: a fresh idempotency key per page load, so a double submit places one order.
  var key = document.getElementById("idempotency_key");
  if (key && !key.value) {
    key.value = (self.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
  }
  // <select data-autosubmit>: submit its form on change (a <noscript> button does it without JavaScript).
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
  // <form data-confirm="...">: ask before submitting.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
