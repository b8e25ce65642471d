"""One headless Chromium walk through every HTML page of every app, public and signed in (vendor, rentals desk,
trainer, admin), on the demo data.

Each page, as it ends (after its action), is checked at two widths: no sideways scrolling at 1100 px, then at a
phone's 390×844 ``scrollWidth <= 390`` and no serious or critical axe-core violation (``assert_page_fits``).
On each page it also records console errors and uncaught exceptions, same-origin sub-resources that fail (CSS, JS,
images, the favicon) and every same-origin ``<a href>`` that does not resolve (GET, redirects followed, < 400),
then fails once with the whole list. A coverage check compares the walked URL names with Django's URL resolver
(and the rendered templates with the project's templates), so a new page without a walk entry fails the test.
Screenshots (``make screenshots`` only): docs/screenshots/walk-<name>.png at 1100 px and walk-<name>-phone.png at
390 px, rewritten only when the page visibly changed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from bazaar.core.testing import assert_page_fits, chromium_browser, save_screenshot

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright runs an event loop in this thread

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"

# Resolver names that are not HTML pages a visitor opens, and why; everything else outside the API and the
# admin must be walked. POST-only names are also never followed as links.
POST_ONLY = {
    "accounts:logout",
    "accounts:token-revoke",
    "storefront:product_toggle",
    "storefront:product_delete",
    "storefront:order_status",
    "storefront:order_payment",
    "rentals:hold_place",
    "rentals:desk_checkout",
    "rentals:desk_done",
    "rentals:desk_renew",
    "rentals:desk_patron_status",
    "rentals:desk_hold",
    "rentals:desk_hold_cancel",
    "rentals:desk_pay",
    "rentals:account_renew",
    "rentals:account_hold_cancel",
    "rentals:account_history",
    "trading:offer_accept",
    "trading:offer_decline",
    "trading:offer_cancel",
    "trading:import_confirm",
    "trading:import_again",
}
NOT_PAGES = {
    **dict.fromkeys(POST_ONLY, "POST-only action (its button sits on a walked page)"),
    "healthz": "plain-text probe (checked as a footer link)",
    "readyz": "JSON probe (checked as a footer link)",
    "metrics": "Prometheus text (checked as a footer link)",
    "openapi-json": "JSON (checked as a link from the home page)",
    "storefront:chart": "SVG image (fetched as a resource with the vendor's session)",
    "media": "uploaded images (fetched as resources by the pages that show them; bazaar/storefront/tests/"
    "test_browser.py)",
    "storefront:orders_csv": "CSV download (checked as a link from the dashboard)",
    "rentals:desk_patron_suggest": "JSON suggestions (fetched by the patron lookup's script; keyboard walk in "
    "bazaar/rentals/tests/test_browser_circulation.py)",
    "trading:import_job_progress": "JSON polled by the import job page (bazaar/trading/tests/test_browser.py)",
    "kvstore:apikey-revoke": "POST-only action (its button sits on the walked API keys page)",
    "kvstore:member-role": "POST-only action (its button sits on the walked members page)",
    "kvstore:member-remove": "POST-only action (its button sits on the walked members page)",
    "kvstore:watch-json": "JSON long-poll followed by the watch page's script (bazaar/kvstore/tests/"
    "test_console_browser.py)",
}
# Pages the walk must reach outside the HTML apps: the interactive API docs and the admin's login page.
EXTRA_PAGES = {"api:openapi-view", "admin:login"}
# Every page is checked at both widths (Walk.fits).
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}
# How many distinct URLs per (role, route, query keys) the link check follows: 50 title links are one route.
LINKS_PER_ROUTE = 4


@dataclass(frozen=True)
class Visit:
    name: str  # screenshot: walk-<name>.png
    role: str  # anon, vendor, desk, trainer, admin, reader, kvmember, kveditor (KV tenant)
    url: str
    covers: str  # the resolver name of the page this visit ends on
    status: int = 200
    shot: bool = True
    action: Callable[[Any], None] | None = None  # run on the loaded page; the page it leads to is checked too
    wait_for: str | None = None  # a selector that appears once a page that renders after load is ready
    full_page: bool = True
    # axe-core at 390 px; off only for pages whose markup is not ours (say why at the visit).
    axe: bool = True


def _submit_empty_order(page: Any) -> None:
    """Add the first product to the cart (site.js keeps it in the cookie), open the cart, and check out with
    a phone number that is too short: the cart page again, with the error at the field (422)."""
    page.click("form[data-cart-add] button[type=submit]")
    with page.expect_navigation():
        page.click("#go-cart")
    page.fill("#customer_name", "Walk Test")
    page.fill("#phone", "12")
    page.fill("#address", "1 Test Road")
    with page.expect_navigation():
        page.click("#place-order")


def _ask_for_a_reset(page: Any) -> None:
    page.fill("#id_email", "nobody@example.com")
    with page.expect_navigation():
        page.click("#send-reset")


def _desk_submit_empty(form: str) -> Callable[[Any], None]:
    def submit(page: Any) -> None:
        with page.expect_navigation():
            page.click(f"#{form}")

    return submit


def _desk_rent_and_return(ids: dict[str, Any]) -> Callable[[Any], None]:
    """A clerk rents a free copy to a demo customer, then takes it back: two form posts, two redirects."""

    def run(page: Any) -> None:
        page.fill("#id_customer", str(ids["customer"]))
        page.fill("#id_barcode", ids["barcode"])
        with page.expect_navigation():
            page.click("#rent")
        assert "Rented" in page.inner_text(".messages")
        page.fill("#id_return_barcode", ids["barcode"])
        with page.expect_navigation():
            page.click("#return")
        assert "Returned" in page.inner_text(".messages")

    return run


WALK_TRAINERS_CSV = (
    b"id,firstName,lastName,dateOfBirth\nwk0001,Walk,Test,02-02-2000\ntr0003,Brock,Renamed,1990-09-01\n"
)


def _import_upload(data: bytes, *, confirm: bool = False, limit: str | None = None) -> Callable[[Any], None]:
    """Staff upload a CSV on the import page (and confirm the preview); ``limit`` lowers the size limit for the
    upload (read per request from ``settings.TRADING_IMPORT_MAX_BYTES``) to reach the "too large" page."""

    def run(page: Any) -> None:
        lowered = {} if limit is None else {"TRADING_IMPORT_MAX_BYTES": int(limit)}
        with override_settings(**lowered):
            page.set_input_files(
                "#id_file", files=[{"name": "walk.csv", "mimeType": "text/csv", "buffer": data}]
            )
            with page.expect_navigation():
                page.click("#preview")
        if confirm:
            with page.expect_navigation():
                page.click("#confirm")

    return run


def _visits(ids: dict[str, Any]) -> list[Visit]:
    shop = ids["shop"]
    return [
        Visit("home", "anon", "/", "home"),
        Visit("accounts-login", "anon", "/accounts/login/", "accounts:login"),
        Visit("accounts-signup", "anon", "/accounts/signup/", "accounts:signup"),
        Visit("password-reset", "anon", "/accounts/password-reset/", "accounts:password_reset"),
        Visit(
            "password-reset-sent",
            "anon",
            "/accounts/password-reset/",
            "accounts:password_reset_done",
            action=_ask_for_a_reset,
        ),
        Visit(
            "password-reset-invalid",
            "anon",
            "/accounts/reset/MQ/set-password/",
            "accounts:password_reset_confirm",
            shot=False,
        ),
        Visit("password-reset-complete", "anon", "/accounts/reset/done/", "accounts:password_reset_complete"),
        Visit("not-found", "anon", "/s/no-such-shop/", "storefront:store", status=404, shot=False),
        # The styled 403 page: a signed-in vendor is not staff at the rentals desk.
        Visit("forbidden", "vendor", "/rentals/desk/", "rentals:desk", status=403, shot=False),
        Visit("admin-login", "anon", "/admin/login/", "admin:login"),
        # Swagger UI's own markup (a developer's tool, vendored as is): fits 390 px, but its html has no lang,
        # its version stamp is low-contrast and its operation rows nest buttons — not ours to restyle.
        Visit(
            "api-docs",
            "anon",
            "/api/docs",
            "api:openapi-view",
            wait_for=".opblock",
            full_page=False,
            axe=False,
        ),
        Visit("storefront-landing", "anon", "/storefront/", "storefront:dashboard"),
        Visit("storefront-signup", "anon", "/storefront/signup/", "storefront:signup"),
        Visit("store", "anon", f"/s/{shop}/", "storefront:store"),
        Visit(
            "store-order-failed",
            "anon",
            f"/s/{shop}/",
            "storefront:store_order",
            status=422,
            action=_submit_empty_order,
        ),
        Visit("cart-empty", "anon", f"/s/{shop}/cart/", "storefront:cart"),
        Visit("store-search", "anon", f"/s/{shop}/?q=tea", "storefront:store", shot=False),
        Visit("store-bad-page", "anon", f"/s/{shop}/?after=x", "storefront:store", status=422, shot=False),
        Visit(
            "order-confirmation",
            "anon",
            f"/s/{shop}/orders/{ids['order_number']}/",
            "storefront:order_confirmation",
        ),
        Visit("rentals-catalogue", "anon", "/rentals/", "rentals:catalogue"),
        Visit("rentals-search", "anon", "/rentals/?q=Le+Guin", "rentals:catalogue", shot=False),
        Visit("rentals-title", "anon", f"/rentals/titles/{ids['title']}/", "rentals:title"),
        Visit("trading-trainers", "anon", "/trading/", "trading:trainers"),
        Visit("trading-trainers-2", "anon", "/trading/?page=2", "trading:trainers", shot=False),
        # Signed in: the vendor's back office and token page.
        Visit("vendor-dashboard", "vendor", "/storefront/", "storefront:dashboard"),
        Visit("vendor-products", "vendor", "/storefront/products/", "storefront:products"),
        Visit("vendor-product-new", "vendor", "/storefront/products/new/", "storefront:product_new"),
        Visit(
            "vendor-product-edit",
            "vendor",
            f"/storefront/products/{ids['product']}/edit/",
            "storefront:product_edit",
        ),
        Visit("vendor-orders", "vendor", "/storefront/orders/", "storefront:orders"),
        Visit(
            "vendor-order-cancel-confirm",
            "vendor",
            f"/storefront/orders/{ids['order']}/status/?status=cancelled",
            "storefront:order_status",
            shot=False,
        ),
        Visit("vendor-order", "vendor", f"/storefront/orders/{ids['order']}/", "storefront:order"),
        Visit("vendor-shop", "vendor", "/storefront/shop/", "storefront:shop"),
        Visit("accounts-tokens", "vendor", "/accounts/tokens/", "accounts:tokens"),
        # Signed in elsewhere: fresh (uncached) renders whose header names the user.
        Visit("desk-catalogue", "desk", "/rentals/", "rentals:catalogue", shot=False),
        Visit("desk-title", "desk", f"/rentals/titles/{ids['title']}/", "rentals:title", shot=False),
        Visit("desk", "desk", "/rentals/desk/", "rentals:desk"),
        Visit(
            "desk-rent-return",
            "desk",
            "/rentals/desk/",
            "rentals:desk_receipt",
            action=_desk_rent_and_return(ids),
            shot=False,
        ),
        # The circulation desk's pages and the patron's account (their dates move with the clock: no screenshots;
        # the keyboard-only checkout walk is bazaar/rentals/tests/test_browser_circulation.py).
        Visit("desk-find", "desk", "/rentals/desk/patrons/?q=amina", "rentals:desk_patrons", shot=False),
        Visit(
            "desk-patron",
            "desk",
            f"/rentals/desk/patrons/{ids['customer']}/",
            "rentals:desk_patron",
            shot=False,
        ),
        Visit("desk-patron-new", "desk", "/rentals/desk/patrons/new/", "rentals:desk_patron_new", shot=False),
        Visit(
            "desk-patron-edit",
            "desk",
            f"/rentals/desk/patrons/{ids['customer']}/edit/",
            "rentals:desk_patron_edit",
            shot=False,
        ),
        Visit(
            "desk-statement",
            "desk",
            f"/rentals/desk/patrons/{ids['customer']}/statement/",
            "rentals:desk_statement",
            shot=False,
        ),
        Visit(
            "desk-receipt",
            "desk",
            f"/rentals/desk/returns/{ids['closed_rental']}/",
            "rentals:desk_receipt",
            shot=False,
        ),
        Visit(
            "desk-payment",
            "desk",
            f"/rentals/desk/payments/{ids['payment']}/",
            "rentals:desk_payment",
            shot=False,
        ),
        Visit("reader-account", "reader", "/rentals/account/", "rentals:account", shot=False),
        Visit("reader-title", "reader", f"/rentals/titles/{ids['title']}/", "rentals:title", shot=False),
        Visit(
            "desk-rent-refused",
            "desk",
            "/rentals/desk/",
            "rentals:desk_rent",
            status=422,
            action=_desk_submit_empty("rent"),
            shot=False,
        ),
        Visit(
            "desk-return-refused",
            "desk",
            "/rentals/desk/",
            "rentals:desk_return",
            status=422,
            action=_desk_submit_empty("return"),
            shot=False,
        ),
        Visit("trainer-trainers", "trainer", "/trading/", "trading:trainers", shot=False),
        # Trading for people (screenshots of these come from bazaar/trading/tests/test_browser.py on request).
        Visit("trading-profile", "anon", "/trading/trainers/tr0002/", "trading:trainer", shot=False),
        Visit("trading-pokemon", "anon", "/trading/pokemon/pk00002/", "trading:pokemon", shot=False),
        Visit("trading-me", "trainer", "/trading/me/?sort=-level", "trading:my_pokemon", shot=False),
        Visit("trading-offers", "trainer", "/trading/offers/", "trading:offers", shot=False),
        Visit("trading-outbox", "trainer", "/trading/offers/?box=outbox", "trading:offers", shot=False),
        Visit("trading-offer", "trainer", f"/trading/offers/{ids['offer']}/", "trading:offer", shot=False),
        Visit(
            "trading-counter",
            "trainer",
            f"/trading/offers/{ids['offer']}/counter/",
            "trading:offer_counter",
            shot=False,
        ),
        Visit(
            "trading-propose", "trainer", "/trading/trainers/tr0002/offer/", "trading:offer_new", shot=False
        ),
        Visit("trading-exchange", "admin", "/trading/exchange/", "trading:exchange", shot=False),
        Visit("trading-import", "admin", "/trading/import/", "trading:import", shot=False),
        Visit(
            "trading-import-too-large",
            "admin",
            "/trading/import/",
            "trading:import",
            status=413,
            action=_import_upload(WALK_TRAINERS_CSV, limit="20"),
            shot=False,
        ),
        Visit(
            "trading-import-preview",
            "admin",
            "/trading/import/",
            "trading:import_preview",
            action=_import_upload(WALK_TRAINERS_CSV),
            shot=False,
        ),
        Visit(
            "trading-import-done",
            "admin",
            "/trading/import/",
            "trading:import_job",
            action=_import_upload(WALK_TRAINERS_CSV, confirm=True),
            shot=False,
        ),
        # A signed-in user without a shop is sent to create one.
        Visit("trainer-new-shop", "trainer", "/storefront/", "storefront:shop", shot=False),
        Visit("admin-home", "admin", "/", "home", shot=False),
        # The KV console (staff), on the demo tenant and its "greeting" key.
        Visit("kv-tenants", "admin", "/kv/", "kvstore:tenants", shot=False),
        Visit("kv-browse", "admin", "/kv/t/demo/", "kvstore:browse", shot=False),
        Visit("kv-entry", "admin", "/kv/t/demo/entry/?key=greeting", "kvstore:entry", shot=False),
        Visit("kv-edit", "admin", "/kv/t/demo/edit/?key=greeting", "kvstore:edit", shot=False),
        Visit("kv-delete", "admin", "/kv/t/demo/delete/?key=greeting", "kvstore:delete", shot=False),
        Visit("kv-history", "admin", "/kv/t/demo/history/?key=greeting", "kvstore:history", shot=False),
        Visit("kv-watch", "admin", "/kv/t/demo/watch/", "kvstore:watch", shot=False),
        Visit("kv-apikeys", "admin", "/kv/t/demo/apikeys/", "kvstore:apikeys", shot=False),
        Visit("kv-members", "admin", "/kv/t/demo/members/", "kvstore:members", shot=False),
        # The demo tenant's own admin (not staff): their tenants, and the members page as they see it.
        Visit("kv-member-tenants", "kvmember", "/kv/", "kvstore:tenants", shot=False),
        Visit("kv-member-members", "kvmember", "/kv/t/demo/members/", "kvstore:members", shot=False),
        # The demo tenant's editor on an admins-only page: the refusal names the role.
        Visit(
            "kv-member-denied", "kveditor", "/kv/t/demo/apikeys/", "kvstore:apikeys", status=403, shot=False
        ),
    ]


# Resources that no page links but a page of this app uses (checked with the given role's session).
RESOURCES = [("vendor", "/storefront/chart.svg", "image/svg+xml")]


def _names(patterns: list[Any], ns: str | None = None) -> Iterator[str]:
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}:{p.namespace}" if ns and p.namespace else (p.namespace or ns)
            yield from _names(p.url_patterns, inner)
        elif isinstance(p, URLPattern) and p.name:
            yield f"{ns}:{p.name}" if ns else p.name


def _required_names() -> set[str]:
    """Every named route that is a page of the site: all of them except the JSON API and the admin's insides."""
    names = set(_names(get_resolver().url_patterns))
    return {n for n in names if not n.startswith(("api:", "admin:"))} | EXTRA_PAGES


def _project_templates() -> set[str]:
    """The project's page templates (partials start with an underscore; base.html is in every page)."""
    out = set()
    for path in (ROOT / "bazaar").glob("**/templates/**/*.html"):
        parts = path.parts
        name = "/".join(parts[parts.index("templates") + 1 :])
        if not Path(name).name.startswith("_"):
            out.add(name)
    return out


def _shot(page: Any, name: str, full_page: bool) -> None:
    save_screenshot(page, SHOTS / f"walk-{name}.png", full_page=full_page)


def _demo_ids() -> dict[str, Any]:
    from django.core.management import call_command

    from bazaar.rentals.models import Copy, CopyState, Customer, CustomerStatus, Payment, Rental, Title
    from bazaar.storefront import demo
    from bazaar.storefront.models import Order, Product

    call_command("demo", stdout=io.StringIO())
    from bazaar.trading.models import TradeOffer

    offer = TradeOffer.objects.filter(state="open", receiver__public_id="tr0001").order_by("pk").first()
    assert offer is not None
    order = Order.objects.filter(shop__slug=demo.DEMO_SLUG).order_by("-created_at").first()
    assert order is not None
    product = Product.objects.filter(shop__slug=demo.DEMO_SLUG).order_by("pk").first()
    assert product is not None
    title = Title.objects.order_by("pk").first()
    assert title is not None
    copy = Copy.objects.filter(state=CopyState.AVAILABLE).order_by("pk").first()
    customer = Customer.objects.filter(status=CustomerStatus.ACTIVE).order_by("pk").first()
    assert copy is not None
    assert customer is not None
    closed = Rental.objects.filter(returned_at__isnull=False).order_by("pk").first()
    payment = Payment.objects.order_by("pk").first()
    assert closed is not None
    assert payment is not None
    return {
        "closed_rental": closed.pk,
        "payment": payment.pk,
        "barcode": copy.barcode,
        "customer": customer.pk,
        "shop": demo.DEMO_SLUG,
        "order": order.pk,
        "order_number": order.number,
        "product": product.pk,
        "title": title.pk,
        "offer": offer.pk,
    }


def _logins() -> dict[str, tuple[str, str]]:
    from bazaar.accounts.demo import DEMO_ADMIN
    from bazaar.kvstore.demo import EDITOR, MEMBER
    from bazaar.rentals.demo import DESK, READER
    from bazaar.storefront.demo import DEMO_VENDOR
    from bazaar.trading.demo import DEMO_PASSWORD, DEMO_USER

    trainer = (DEMO_USER, DEMO_PASSWORD)
    return {
        "vendor": DEMO_VENDOR,
        "desk": DESK,
        "trainer": trainer,
        "admin": DEMO_ADMIN,
        "reader": READER,
        "kvmember": MEMBER,
        "kveditor": EDITOR,
    }


CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile
    + ":" + e.lineNumber);
});
"""


class Walk:
    """The browser side: one context and page per role, listeners that turn anything wrong into a problem line."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base.rstrip("/")
        self.origin = urlsplit(self.base).netloc
        self.contexts: dict[str, Any] = {}
        self.pages: dict[str, Any] = {}
        self.problems: list[str] = []
        self.checked: set[tuple[str, str]] = set()
        self.per_route: dict[tuple[str, str, tuple[str, ...]], int] = {}
        self.where = ""
        self.expected_status = 200
        self.expected_documents: set[str] = set()

    def page(self, role: str) -> Any:
        if role not in self.pages:
            ctx = self.browser.new_context(viewport=DESKTOP, base_url=self.base)
            self.contexts[role] = ctx
            if role != "anon":
                self._login(ctx, *_logins()[role])
            # Record Content-Security-Policy violations (an init script is not subject to the page's policy).
            ctx.add_init_script(CSP_RECORDER)
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            self._listen(page)
            self.pages[role] = page
        return self.pages[role]

    def _login(self, ctx: Any, username: str, password: str) -> None:
        """Through the real login form over HTTP (the form page itself is walked anonymously)."""
        import re

        form = ctx.request.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text())
        assert token, "the login page has no CSRF token"
        done = ctx.request.post(
            "/accounts/login/",
            form={"csrfmiddlewaretoken": token.group(1), "username": username, "password": password},
            headers={"Referer": f"{self.base}/accounts/login/"},
        )
        assert done.ok, f"{username} could not log in ({done.status})"
        assert "/accounts/login/" not in done.url, f"{username} could not log in (wrong password?)"

    def same_origin(self, url: str) -> bool:
        return urlsplit(url).netloc == self.origin

    def _listen(self, page: Any) -> None:
        def on_console(msg: Any) -> None:
            url = msg.location.get("url", "")
            if msg.type != "error":
                return
            if msg.text.startswith("Failed to load resource") and url in self.expected_documents:
                return  # the page itself answered the status its visit expects (a 422 form result)
            self.problems.append(f"{self.where}: console error: {msg.text} ({url})")

        def on_response(response: Any) -> None:
            if response.request.is_navigation_request():
                if response.status >= 400 and response.status == self.expected_status:
                    self.expected_documents.add(response.url)
            elif response.status >= 400 and self.same_origin(response.url):
                kind = response.request.resource_type
                self.problems.append(f"{self.where}: {response.status} for {kind} {response.url}")

        def on_failed(request: Any) -> None:
            # The KV watch page's long-poll is still open when the walk moves on: leaving cuts it (expected).
            if urlsplit(request.url).path.endswith("/watch.json") and "ERR_ABORTED" in str(request.failure):
                return
            if self.same_origin(request.url):
                self.problems.append(f"{self.where}: request failed: {request.url} ({request.failure})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.problems.append(f"{self.where}: uncaught exception: {exc}"))
        page.on("response", on_response)
        page.on("requestfailed", on_failed)

    def visit(self, v: Visit) -> str:
        """Open the page, check it and its links; return the resolver name of the page it ended on."""
        from django.urls import Resolver404, resolve

        self.where = f"{v.name} ({v.role} {v.url})"
        self.expected_status = v.status
        page = self.page(v.role)
        response = page.goto(v.url, wait_until="load")
        status = response.status if response else 0
        if response is not None and not response.header_value("content-security-policy"):
            self.problems.append(f"{self.where}: no Content-Security-Policy header")
        if v.action is not None:
            v.action(page)
            status = page.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
        if v.wait_for:
            page.wait_for_selector(v.wait_for)
        if status != v.status:
            self.problems.append(f"{self.where}: answered {status}, expected {v.status}")
        for violation in page.evaluate("window.__cspViolations || []"):
            self.problems.append(f"{self.where}: Content-Security-Policy violation: {violation}")
        try:
            landed = resolve(urlsplit(page.url).path).view_name
        except Resolver404:
            landed = ""
        for href in page.eval_on_selector_all("link[rel~=icon]", "els => els.map(e => e.href)") or [
            f"{self.base}/favicon.ico"  # what a browser asks for when the page names no icon
        ]:
            self.check(v.role, href, "favicon")
        if v.shot:
            _shot(page, v.name, v.full_page)
        self.fits(page, v)
        # In-page links (the skip link "#main") are not requests: the page itself was checked above.
        for href in page.eval_on_selector_all("a[href]:not([href^='#'])", "els => els.map(e => e.href)"):
            self.check_link(v.role, href)
        return landed

    def fits(self, page: Any, v: Visit) -> None:
        """The page as it ended (after its action) at both widths: no sideways scrolling at the desktop width,
        then at a phone's 390×844 no sideways scrolling and no serious or critical axe-core violation (and its
        phone screenshot, walk-<name>-phone.png, under ``make screenshots``). The viewport is put back for the
        next visit; a failure is a problem line, not the end of the walk."""
        try:
            assert_page_fits(page, width=DESKTOP["width"], axe=False)
            page.set_viewport_size(PHONE)
            assert_page_fits(page, width=PHONE["width"], axe=v.axe)
            if v.shot:
                save_screenshot(
                    page, SHOTS / f"walk-{v.name}-phone.png", full_page=v.full_page, width=PHONE["width"]
                )
        except AssertionError as exc:
            self.problems.append(f"{self.where}: {exc}")
        finally:
            page.set_viewport_size(DESKTOP)

    def check(self, role: str, url: str, what: str, content_type: str | None = None) -> None:
        """GET with the role's session, redirects followed; anything >= 400 is a problem. Once per role and URL."""
        if (role, url) in self.checked:
            return
        self.checked.add((role, url))
        try:
            r = self.contexts[role].request.get(url, max_redirects=10)
        except Exception as exc:  # a refused connection is a problem to report, not a crash of the walk
            self.problems.append(f"{self.where}: {what} {url} failed: {exc}")
            return
        if r.status >= 400:
            self.problems.append(f"{self.where}: {what} {url} answered {r.status}")
        elif content_type and not r.headers.get("content-type", "").startswith(content_type):
            self.problems.append(f"{self.where}: {what} {url} is {r.headers.get('content-type')}")

    def check_link(self, role: str, href: str) -> None:
        from django.urls import Resolver404, resolve

        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or not self.same_origin(href):
            return
        url = href.split("#", 1)[0]
        try:
            route = resolve(parts.path).view_name
        except Resolver404:
            route = parts.path  # unresolvable: still fetched, and reported when it fails
        if route in POST_ONLY or (role, url) in self.checked:
            return
        key = (role, route, tuple(sorted(q.split("=")[0] for q in parts.query.split("&") if q)))
        if self.per_route.get(key, 0) >= LINKS_PER_ROUTE:
            return
        self.per_route[key] = self.per_route.get(key, 0) + 1
        self.check(role, url, "link")

    def close(self) -> None:
        for ctx in self.contexts.values():
            ctx.close()


@pytest.fixture
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def test_every_page_has_a_walk_entry() -> None:
    """A page added to any app's urls.py fails here until the walk below visits it (or it is listed as not a page)."""
    visits = _visits(
        {"shop": "s", "order": 1, "order_number": "n", "product": 1, "title": 1, "customer": 1, "offer": 1}
        | {"closed_rental": 1, "payment": 1}
    )
    required = _required_names()
    walked = {v.covers for v in visits}
    missing = required - walked - set(NOT_PAGES)
    assert not missing, f"pages without a walk entry in {Path(__file__).name}: {sorted(missing)}"
    stale = (walked | set(NOT_PAGES)) - required
    assert not stale, f"walk entries for routes that no longer exist: {sorted(stale)}"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_walk_every_page(live_server: Any, chromium: Any) -> None:
    from django.test.signals import template_rendered

    rendered: set[str] = set()

    def on_render(sender: Any, template: Any, **kwargs: Any) -> None:
        if template.name:
            rendered.add(template.name)

    template_rendered.connect(on_render, dispatch_uid="browser-walk")
    walk = Walk(chromium, live_server.url)
    landed: set[str] = set()
    try:
        for v in _visits(_demo_ids()):
            try:
                name = walk.visit(v)
            except Exception as exc:  # keep walking: the report lists every problem at once
                walk.problems.append(f"{walk.where}: {type(exc).__name__}: {exc}")
                continue
            landed.add(name)
            if name != v.covers:
                walk.problems.append(
                    f"{walk.where}: ended on {name or 'an unknown URL'}, expected {v.covers}"
                )
        for role, url, content_type in RESOURCES:
            walk.where = f"resource ({role})"
            walk.page(role)
            walk.check(role, f"{walk.base}{url}", "resource", content_type)
    finally:
        template_rendered.disconnect(dispatch_uid="browser-walk")
        walk.close()

    unwalked = _required_names() - landed - set(NOT_PAGES)
    if unwalked:
        walk.problems.append(f"pages the walk never reached: {sorted(unwalked)}")
    # 500.html is rendered without a request (Django's server_error); accounts/tests/test_password_reset.py
    # renders it. Mail templates are not pages.
    unrendered = {
        t for t in _project_templates() - rendered - {"base.html", "500.html"} if "/email/" not in t
    }
    if unrendered:
        walk.problems.append(f"templates no walked page rendered: {sorted(unrendered)}")
    assert not walk.problems, f"{len(walk.problems)} problems:\n" + "\n".join(walk.problems)
    assert len(walk.checked) > 50  # the link check really ran
