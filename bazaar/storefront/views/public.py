"""Public pages: the store at /s/<slug>/ (cached bytes, fast path), order placement and confirmation."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from html import escape
from urllib.parse import urlencode

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bazaar.core import cache
from bazaar.core.errors import DomainError, NotFound, ValidationFailed
from bazaar.core.http import bytes_response
from bazaar.core.schemas import strip_controls, text_problem
from bazaar.storefront import conf, links, selectors, services
from bazaar.storefront.cache import PAGE_VARIANT, store_scope, store_surface
from bazaar.storefront.stock import stock_state

HTML = "text/html; charset=utf-8"


class _NoStore(Exception):
    """Raised inside a cache build when the slug names no shop (nothing is cached then)."""


def thumb_html(name: str, small: str, large: str, width: int, height: int, css: str = "thumb") -> str:
    """An ``<img>`` of a product's thumbnails: both widths in ``srcset``, the size given (no layout shift when it
    arrives), lazy. ``name`` is already escaped; an empty ``small`` gives a plain placeholder."""
    if not small:
        return f'<span class="{css} none" aria-hidden="true"></span>'
    h = round(height * 240 / width) if width else 240
    s_url, l_url = escape(links.media_url(small)), escape(links.media_url(large))
    return (
        f'<img class="{css}" src="{s_url}" srcset="{s_url} 240w, {l_url} 480w" sizes="(max-width: 520px) 45vw, 240px"'
        f' width="240" height="{h}" loading="lazy" decoding="async" alt="{name}">'
    )


def _card(p: selectors.StoreProduct, slug: str, currency: str) -> str:
    name = escape(p.name)
    img = thumb_html(name, p.thumb_small, p.thumb, p.thumb_width, p.thumb_height)
    desc = f'<p class="muted desc">{escape(p.description)}</p>' if p.description else ""
    price = f'<strong class="now">{currency} {p.price}</strong>'
    if p.price < p.mrp:
        off = int((Decimal(100) * (p.mrp - p.price) / p.mrp).quantize(Decimal(1))) if p.mrp else 0
        price += f' <s class="muted" aria-label="MRP {p.mrp}">{p.mrp}</s> <span class="off">{off}% off</span>'
    css, words = stock_state(p.stock, p.is_available)
    if p.is_available and p.stock > 0:
        buy = (
            f'<form method="post" action="/s/{slug}/cart/" class="add" data-cart-add>'
            f'<input type="hidden" name="op" value="add"><input type="hidden" name="product" value="{p.id}">'
            f'<label class="sr-only" for="qty-{p.id}">Quantity of {name}</label>'
            f'<input id="qty-{p.id}" class="qty" type="number" name="qty" value="1" min="1" max="{conf.max_quantity()}"'
            f' inputmode="numeric" data-price="{p.price}" data-name="{name}">'
            f'<button type="submit">Add to cart</button></form>'
        )
    else:
        buy = ""
    return (
        f'<li class="product" data-product="{name}">{img}<h3>{name}</h3>{desc}'
        f'<p class="price">{price}</p><p><span class="badge {css}">{words}</span></p>{buy}</li>\n'
    )


def _store_link(slug: str, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/s/{slug}/" + (f"?{query}" if query else "")


def render_store(slug: str, *, q: str = "", category: str = "", after: str = "") -> bytes:
    """The public page's bytes. Rendered without the request: identical for every visitor (no CSRF token, no
    user, no cart: the cart lives in the visitor's cookie and its own page), so the same bytes can be served to
    everyone from the cache and by the fast path.

    The product cards are built with f-strings and ``html.escape`` rather than template tags: with 50 products
    the template engine spent ~10 ms in variable resolution and localisation. The shell stays a template.
    """
    try:
        page = selectors.store_page(slug, q=q, category=category, after=after)
    except NotFound:
        raise _NoStore()
    shop = page.shop
    cards = mark_safe("".join(_card(p, shop.slug, shop.currency) for p in page.products))  # noqa: S308 - escaped
    chips = [
        {"label": "All", "count": page.total, "href": _store_link(shop.slug, q=q), "current": not category}
    ] + [
        {"label": c, "count": n, "href": _store_link(shop.slug, q=q, c=c), "current": c == category}
        for c, n in page.categories
    ]
    context = {
        "shop": shop,
        "cards": cards,
        "has_products": bool(page.products),
        "total": page.total,
        "matching": page.matching,
        "q": q,
        "category": category,
        "chips": chips if page.categories else [],
        "next_href": _store_link(shop.slug, q=q, c=category, after=page.next_after)
        if page.next_after
        else "",
        "first_href": _store_link(shop.slug, q=q, c=category) if after else "",
        "cart_cookie": cart_cookie_name(shop.id),
    }
    return render_to_string("storefront/store.html", context).encode()


def _query(request: HttpRequest) -> dict[str, str]:
    """The store page's query: search text (control characters dropped, 100 characters), category, cursor."""
    return {
        "q": " ".join(strip_controls(request.GET.get("q", "")).split())[:100],
        "category": " ".join(strip_controls(request.GET.get("c", "")).split())[:60],
        "after": strip_controls(request.GET.get("after", ""))[:400],
    }


@require_GET
def store_page(request: HttpRequest, slug: str) -> HttpResponse:
    query = _query(request)
    try:
        if any(query.values()):
            # A search, a category or a later page: rendered for this query, not cached (a keyset page is a few
            # index reads); the plain page, which every shared link opens, is the cached one.
            try:
                body = render_store(slug, **query)
            except ValidationFailed as exc:
                return _store_problem(request, slug, exc)
            return bytes_response(
                request, cache.Cached(body, cache.etag_for(body), hit=False), content_type=HTML
            )
        if not conf.cache_enabled():
            body = render_store(slug)
            return bytes_response(
                request, cache.Cached(body, cache.etag_for(body), hit=False), content_type=HTML
            )
        cached = store_surface().get_or_build(
            store_scope(slug), PAGE_VARIANT, lambda: render_store(slug), ttl=conf.page_ttl()
        )
    except _NoStore:
        target = selectors.slug_redirect(slug)
        if target is None:
            raise Http404("No such store.")
        response = HttpResponsePermanentRedirect(f"/s/{target}/")
        # Bounded: browsers cache a 301 forever otherwise, and a vendor may move back to this slug later.
        response["Cache-Control"] = "public, max-age=3600"
        return response
    return bytes_response(request, cached, content_type=HTML)


def _lines(request: HttpRequest) -> list[services.OrderLine]:
    lines = []
    for field in request.POST:
        raw = request.POST.get(field, "")
        if not field.startswith("qty_") or not raw.strip():
            continue
        try:
            product_id, quantity = int(field[4:]), int(raw)
        except ValueError:
            raise ValidationFailed("Quantities must be whole numbers.", code="invalid_quantity")
        if quantity == 0:
            continue
        price_raw = request.POST.get(f"price_{product_id}")
        try:
            price = Decimal(price_raw) if price_raw else None
        except InvalidOperation:
            price = None
        lines.append(services.OrderLine(product_id, quantity, price))
    return lines


_ORDER_TEXT = {"customer_name": False, "phone": False, "address": True, "idempotency_key": False}


def _order_form(request: HttpRequest) -> dict[str, str]:
    """The order form's text fields under the API's text rule (core.schemas): 422 ``invalid_text``."""
    form = {name: request.POST.get(name, "") for name in _ORDER_TEXT}
    for name, multiline in _ORDER_TEXT.items():
        problem = text_problem(form[name], multiline=multiline)
        if problem is not None:
            raise ValidationFailed(problem, code="invalid_text", details={"field": name})
    form["idempotency_key"] = form["idempotency_key"].strip() or f"nojs-{uuid.uuid4()}"
    return form


def _store_problem(request: HttpRequest, slug: str, exc: DomainError) -> HttpResponse:
    response = render(
        request,
        "storefront/store_problem.html",
        {"slug": slug, "message": exc.message, "code": exc.code},
        status=exc.status,
    )
    response["Cache-Control"] = "no-store"
    return response


# --- the cart: a cookie of the visitor's own, read by the cart page; the store page stays the same bytes for all


def cart_cookie_name(shop_id: int) -> str:
    return f"cart{shop_id}"


def cart_read(request: HttpRequest, shop_id: int) -> dict[int, int]:
    """``{product_id: quantity}`` from the cookie ``cart<shop id>`` (``id-qty-price`` items joined by ``_``; the
    price is only for site.js's running total, the server always reads prices from the database). Anything
    malformed is skipped: a cookie is the visitor's own input, never trusted, never a 500."""
    cart: dict[int, int] = {}
    for item in request.COOKIES.get(cart_cookie_name(shop_id), "").split("_")[: conf.max_order_lines()]:
        parts = item.split("-")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() and len(parts[0]) < 19:
            qty = min(int(parts[1]), conf.max_quantity())
            if qty > 0:
                cart[int(parts[0])] = qty
    return cart


def _cart_set_cookie(response: HttpResponse, shop_id: int, lines: list[selectors.CartLine]) -> None:
    value = "_".join(f"{ln.product.pk}-{ln.quantity}-{ln.product.price}" for ln in lines)
    if not value:
        response.delete_cookie(cart_cookie_name(shop_id), path="/s/")
        return
    # Not HttpOnly on purpose: site.js keeps the running total in it. It grants nothing (prices and stock are
    # checked at the order), so reading it from script exposes nothing.
    response.set_cookie(
        cart_cookie_name(shop_id), value, max_age=30 * 86400, path="/s/", samesite="Lax", httponly=False
    )


def _int(raw: str | None, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit() or len(raw.strip()) > 9:
        raise ValidationFailed("Quantities must be whole numbers.", code="invalid_quantity")
    return int(raw)


def _cart_page(
    request: HttpRequest,
    slug: str,
    *,
    cart: dict[int, int] | None = None,
    error: DomainError | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    shop, lines, dropped = selectors.cart_lines(slug, cart if cart is not None else {})
    field_errors: dict[str, str] = {}
    if error is not None and error.code == "invalid_customer" and isinstance(error.details, dict):
        field_errors = {k: str(v) for k, v in error.details.items()}
    context = {
        "shop": shop,
        "lines": lines,
        "dropped": dropped,
        "total": sum((ln.line_total for ln in lines), Decimal("0.00")),
        "error": error if error is not None and not field_errors else None,
        "field_errors": field_errors,
        "form": form or {},
        "idempotency_key": (form or {}).get("idempotency_key") or str(uuid.uuid4()),
        "max_quantity": conf.max_quantity(),
        "cart_cookie": cart_cookie_name(shop.pk),
    }
    response = render(request, "storefront/cart.html", context, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


# CSRF-exempt on purpose, like the order below: the cart is the visitor's own cookie and grants nothing.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def cart(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the cart with its running total, quantity steppers and the checkout form. POST (the store's "Add to
    cart" and the steppers, which work without JavaScript): ``op=add`` adds ``qty`` (default 1) of ``product``,
    ``op=set`` sets it (0 removes); then 303 back here. A bad quantity (``invalid_quantity``), a product not sold
    here (``unknown_product``) or another op (``invalid_cart_op``) answers 422 with the cart page, unchanged."""
    try:
        shop_id = selectors.shop_id_by_slug(slug)
    except NotFound:
        raise Http404("No such store.")
    current = cart_read(request, shop_id)
    if request.method == "GET":
        return _cart_page(request, slug, cart=current)
    try:
        op = request.POST.get("op", "add")
        if op not in ("add", "set"):
            raise ValidationFailed(
                "The cart can add a product or set its quantity, nothing else.", code="invalid_cart_op"
            )
        raw_product = (request.POST.get("product") or "").strip()
        # Not a product id at all (a word, 23 digits) is a product this store does not sell, like an unknown id.
        product = int(raw_product) if raw_product.isdigit() and len(raw_product) <= 18 else 0
        qty = _int(request.POST.get("qty"), 1 if op == "add" else 0)
        if not product or not selectors.product_on_store(shop_id, product):
            raise ValidationFailed("That product is not sold here.", code="unknown_product")
        wanted = dict(current)
        wanted[product] = min(qty + (current.get(product, 0) if op == "add" else 0), conf.max_quantity())
        if wanted[product] <= 0:
            del wanted[product]
        if len(wanted) > conf.max_order_lines():
            raise ValidationFailed("Too many different products in one cart.", code="too_many_lines")
    except DomainError as exc:
        return _cart_page(request, slug, cart=current, error=exc, status=exc.status)
    _, lines, _ = selectors.cart_lines(slug, wanted)
    response = HttpResponseRedirect(f"/s/{slug}/cart/")
    response.status_code = 303
    _cart_set_cookie(response, shop_id, lines)
    return response


# CSRF-exempt on purpose: the order is anonymous and uses no ambient authority (no cookie or session grants
# anything here); a forged submit could only place an order a stranger could place anyway. The idempotency key
# comes from the cart page (a fresh UUID per render), so a double submit places one order.
@csrf_exempt
@require_POST
def store_order(request: HttpRequest, slug: str) -> HttpResponse:
    """Checkout. A refusal re-renders the cart page of this shop with the reason next to the field it concerns and
    what was typed kept (status 4xx, nothing written); success clears the cart and 303s to the order's page."""
    form = {name: request.POST.get(name, "") for name in _ORDER_TEXT}
    try:
        form = _order_form(request)
        placed = services.order_place(slug=slug, lines=_lines(request), **form)
    except DomainError as exc:
        try:
            shop_id = selectors.shop_id_by_slug(slug)
        except NotFound:
            raise Http404("No such store.")
        return _cart_page(
            request, slug, cart=cart_read(request, shop_id), error=exc, form=form, status=exc.status
        )
    response = HttpResponseRedirect(f"/s/{slug}/orders/{placed.order.number}/")
    response.status_code = 303  # See Other: reloading the confirmation never re-posts the order
    response.delete_cookie(cart_cookie_name(placed.order.shop_id), path="/s/")
    return response


@require_GET
def order_confirmation(request: HttpRequest, slug: str, number: str) -> HttpResponse:
    """The customer's order page (the unguessable number is the key): lines, total and the timeline, times in the
    shop's time zone."""
    try:
        order = selectors.order_public(slug, number)
    except NotFound:
        raise Http404("No such order.")
    response = render(
        request,
        "storefront/order_confirmation.html",
        {
            "order": order,
            "shop": order.shop,
            "items": list(order.items.all()),
            "timeline": selectors.order_timeline(order),
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response
