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
  // [data-copy="#input"]: a Copy button (hidden without JavaScript, where the field can be selected by hand).
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      field.select();
      var done = function () { button.textContent = "Copied ✓"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
      } else { document.execCommand("copy"); done(); }
    });
  });
  // The store's cart (storefront): the cookie cart<shop id> holds "id-qty-price" items joined by "_". Without
  // JavaScript "Add to cart" posts and the cart page shows the total; with it, adding stays on the page, the
  // header shows the running total, and the quantity box gets − / + steppers.
  var link = document.getElementById("cart-link");
  if (link) {
    var name = link.getAttribute("data-cart-cookie");
    var currency = link.getAttribute("data-currency") || "";
    var sum = link.querySelector(".cart-sum");
    var read = function () {
      var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      var items = {};
      if (m && m[1]) {
        m[1].split("_").forEach(function (it) {
          var p = it.split("-");
          if (p.length >= 3 && +p[1] > 0) { items[p[0]] = { qty: +p[1], price: p.slice(2).join("-") }; }
        });
      }
      return items;
    };
    var write = function (items) {
      var parts = Object.keys(items).map(function (id) { return id + "-" + items[id].qty + "-" + items[id].price; });
      document.cookie = name + "=" + parts.join("_") + "; path=/s/; max-age=" + (30 * 86400) + "; samesite=lax";
    };
    var show = function () {
      var items = read(), n = 0, cents = 0;
      Object.keys(items).forEach(function (id) {
        n += items[id].qty;
        cents += items[id].qty * Math.round(parseFloat(items[id].price) * 100);
      });
      sum.textContent = n ? n + " item" + (n === 1 ? "" : "s") + " · " + currency + " " + (cents / 100).toFixed(2) : "";
    };
    show();
    document.querySelectorAll("form[data-cart-add]").forEach(function (form) {
      var qty = form.querySelector("input.qty");
      var step = function (label, text, delta) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "secondary step"; b.textContent = text;
        b.setAttribute("aria-label", label + " " + qty.getAttribute("data-name"));
        b.addEventListener("click", function () {
          var v = Math.max(1, Math.min(+qty.max || 1000, (parseInt(qty.value, 10) || 1) + delta));
          qty.value = v;
        });
        return b;
      };
      qty.parentNode.insertBefore(step("One less", "−", -1), qty);
      qty.parentNode.insertBefore(step("One more", "+", 1), qty.nextSibling);
      form.addEventListener("submit", function (event) {
        var n = parseInt(qty.value, 10);
        if (!(n > 0)) { return; }  // let the server say what is wrong
        event.preventDefault();
        var items = read(), id = form.querySelector("input[name=product]").value;
        var had = items[id] ? items[id].qty : 0;
        items[id] = { qty: Math.min(had + n, +qty.max || 1000), price: qty.getAttribute("data-price") };
        write(items);
        show();
        var button = form.querySelector("button[type=submit]");
        button.textContent = "Added ✓";
        setTimeout(function () { button.textContent = "Add to cart"; }, 1500);
      });
    });
  }
})();
