"""Public pages: the store at /s/<slug>/ (cached bytes, fast path), order placement and confirmation."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from html import escape

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
from django.views.decorators.http import require_GET, require_POST

from bazaar.core import cache
from bazaar.core.errors import DomainError, NotFound, ValidationFailed
from bazaar.core.http import bytes_response
from bazaar.core.schemas import text_problem
from bazaar.storefront import conf, links, selectors, services
from bazaar.storefront.cache import PAGE_VARIANT, store_scope, store_surface

HTML = "text/html; charset=utf-8"
LOW_STOCK_BADGE = 5


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


def _row(p: selectors.StoreProduct) -> str:
    name = escape(p.name)
    img = thumb_html(name, p.thumb_small, p.thumb, p.thumb_width, p.thumb_height)
    desc = f'<br><span class="muted">{escape(p.description)}</span>' if p.description else ""
    price = f"<strong>{p.price}</strong>"
    if p.price != p.mrp:
        price = f'<s class="muted">{p.mrp}</s> {price}'
    if not p.is_available:
        badge = '<span class="badge bad">Unavailable</span>'
    elif p.stock <= 0:
        badge = '<span class="badge bad">Out of stock</span>'
    elif p.stock <= LOW_STOCK_BADGE:
        badge = f'<span class="badge warn">Only {p.stock} left</span>'
    else:
        badge = f'<span class="badge ok">In stock ({p.stock})</span>'
    if p.is_available and p.stock > 0:
        qty = (
            f'<input type="number" name="qty_{p.id}" min="0" max="{p.stock}" value="0" class="qty" '
            f'aria-label="Quantity of {name}"><input type="hidden" name="price_{p.id}" value="{p.price}">'
        )
    else:
        qty = "—"
    return (
        f'<tr data-product="{name}"><td>{img}<strong>{name}</strong>{desc}</td><td class="num">{price}</td>'
        f'<td>{badge}</td><td class="num">{qty}</td></tr>\n'
    )


def render_store(slug: str) -> bytes:
    """The public page's bytes. Rendered without the request: identical for every visitor (no CSRF token, no
    user), so the same bytes can be served to everyone from the cache and by the fast path.

    The product rows are built with f-strings and ``html.escape`` rather than template tags: with 50 products
    the template engine spent ~10 ms in variable resolution and localisation, which alone would cap the
    uncached page far below 500 req/s on two cores. The shell stays a template.
    """
    try:
        shop, products = selectors.store_by_slug(slug)
    except NotFound:
        raise _NoStore()
    rows = mark_safe("".join(_row(p) for p in products))  # noqa: S308 - every value above is escaped or numeric
    return render_to_string(
        "storefront/store.html", {"shop": shop, "rows": rows, "has_products": bool(products)}
    ).encode()


@require_GET
def store_page(request: HttpRequest, slug: str) -> HttpResponse:
    try:
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


# CSRF-exempt on purpose: the order is anonymous and uses no ambient authority (no cookie or session grants
# anything here); a forged submit could only place an order a stranger could place anyway. The idempotency key
# comes from the page (crypto.randomUUID on load), so the cached page stays identical for every visitor.
@csrf_exempt
@require_POST
def store_order(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        form = _order_form(request)
        placed = services.order_place(slug=slug, lines=_lines(request), **form)
    except DomainError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        response = render(
            request,
            "storefront/order_failed.html",
            {"slug": slug, "message": exc.message, "code": exc.code, "details": details},
            status=exc.status,
        )
        response["Cache-Control"] = "no-store"
        return response
    response = HttpResponseRedirect(f"/s/{slug}/orders/{placed.order.number}/")
    response.status_code = 303  # See Other: reloading the confirmation never re-posts the order
    return response


@require_GET
def order_confirmation(request: HttpRequest, slug: str, number: str) -> HttpResponse:
    try:
        order = selectors.order_public(slug, number)
    except NotFound:
        raise Http404("No such order.")
    response = render(
        request, "storefront/order_confirmation.html", {"order": order, "items": list(order.items.all())}
    )
    response["Cache-Control"] = "private, no-store"
    return response
