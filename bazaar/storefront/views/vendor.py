"""The vendor's pages (signed in, CSRF-protected): dashboard, shop settings, products, orders, CSV export.

Every lookup is scoped to the signed-in user's shop, so another shop's product or order is a 404.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bazaar.accounts.models import User
from bazaar.core.errors import DomainError, NotFound
from bazaar.core.schemas import strip_controls
from bazaar.storefront import conf, links, selectors, services
from bazaar.storefront.chart import orders_chart_svg
from bazaar.storefront.forms import PaymentForm, ProductForm, ShopForm, StatusForm, VendorSignupForm
from bazaar.storefront.models import Order, OrderStatus, Shop
from bazaar.storefront.services.shops import DEFAULT_TIMEZONE


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _shop_or_404(request: HttpRequest) -> Shop:
    shop = selectors.shop_for_owner(_user(request))
    if shop is None:
        raise Http404("You have no shop yet.")
    return shop


def _form_error(form: Form, exc: DomainError) -> None:
    details = exc.details if isinstance(exc.details, dict) else {}
    field = details.get("field")
    if exc.code in {"slug_taken", "invalid_slug"}:
        field = "slug"
    elif exc.code == "duplicate_name" or exc.code == "invalid_name":
        field = "name"
    elif exc.code == "username_taken":
        field = "username"
    if "password" in details:
        for msg in details["password"]:
            form.add_error("password", msg)
        return
    form.add_error(field if field in form.fields else None, exc.message)


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "storefront/landing.html")
    shop = selectors.shop_for_owner(_user(request))
    if shop is None:
        return redirect("storefront:shop")
    summary = selectors.dashboard_summary(shop)
    chart = mark_safe(orders_chart_svg(summary.days, shop.currency, shop.timezone_label))  # noqa: S308 - built from numbers and escaped text
    recent = list(selectors.order_list(shop)[:5])
    url = links.store_url(shop.slug)
    share = {
        "url": url,
        "whatsapp": "https://wa.me/?" + urlencode({"text": f"Shop at {shop.name}: {url}"}),
        # segno writes the SVG from the URL alone (escaped title): no user markup reaches it.
        "qr": mark_safe(segno.make(url, error="m").svg_inline(scale=4, title=f"QR code for {url}")),  # noqa: S308
    }
    return render(
        request,
        "storefront/dashboard.html",
        {
            "shop": shop,
            "summary": summary,
            "chart": chart,
            "recent": recent,
            "share": share,
            "has_products": selectors.product_list(shop).exists(),
            "low_stock": conf.low_stock_threshold(),
        },
    )


@require_GET
def chart_svg(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next={request.path}")
    shop = _shop_or_404(request)
    summary = selectors.dashboard_summary(shop)
    response = HttpResponse(
        orders_chart_svg(summary.days, shop.currency, shop.timezone_label), content_type="image/svg+xml"
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("storefront:shop")
    form = VendorSignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            shop = services.vendor_signup(
                username=data["username"],
                password=data["password"],
                email=data["email"],
                shop_name=data["shop_name"],
                slug=data["slug"],
                currency=data["currency"],
                contact_phone=data["contact_phone"],
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            login(request, shop.owner, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome! Your store is live at /s/{shop.slug}/.")
            return redirect("storefront:dashboard")
    return render(request, "storefront/signup.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def shop_settings(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    shop = selectors.shop_for_owner(user)
    initial: dict[str, Any] = {"contact_email": user.email}
    if shop is not None:
        initial = {
            "name": shop.name,
            "slug": shop.slug,
            "currency": shop.currency,
            "contact_email": shop.contact_email,
            "contact_phone": shop.contact_phone,
            "timezone": shop.timezone,
        }
    form = ShopForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        data["timezone"] = data.get("timezone") or (shop.timezone if shop else DEFAULT_TIMEZONE)
        try:
            if shop is None:
                shop = services.shop_create(owner=user, **data)
                messages.success(request, f"Your store is live at /s/{shop.slug}/.")
            else:
                shop = services.shop_update(owner=user, **{**data, "slug": data["slug"] or shop.slug})
                messages.success(request, "Shop saved.")
        except DomainError as exc:
            _form_error(form, exc)
        else:
            return redirect("storefront:dashboard")
    return render(
        request, "storefront/shop_form.html", {"form": form, "shop": shop}, status=400 if form.errors else 200
    )


@login_required
@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    shop = _shop_or_404(request)
    q = " ".join(strip_controls(request.GET.get("q", "")).split())[:100]
    products = selectors.product_list(shop)
    if q:
        products = products.filter(Q(name__icontains=q) | Q(category__icontains=q))
    page = Paginator(products.order_by("name", "id"), 50).get_page(request.GET.get("page"))
    return render(request, "storefront/products.html", {"shop": shop, "page": page, "q": q})


@login_required
@require_http_methods(["GET", "POST"])
def product_new(request: HttpRequest) -> HttpResponse:
    shop = _shop_or_404(request)
    form = ProductForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_create(owner=_user(request), **form.cleaned_data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Added “{product.name}”.")
            return redirect("storefront:products")
    return render(
        request,
        "storefront/product_form.html",
        {"form": form, "shop": shop, "product": None, "categories": selectors.shop_categories(shop)},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def product_edit(request: HttpRequest, pk: int) -> HttpResponse:
    shop = _shop_or_404(request)
    try:
        product = selectors.product_get(shop, pk)
    except NotFound:
        raise Http404("No such product.")
    initial = {
        f: getattr(product, f)
        for f in ("name", "description", "mrp", "price", "stock", "is_available", "is_listed", "category")
    }
    form = ProductForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        image = data.pop("image", None)
        try:
            services.product_update(owner=_user(request), product_id=pk, image=image or None, **data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Product saved.")
            return redirect("storefront:products")
    return render(
        request,
        "storefront/product_form.html",
        {"form": form, "shop": shop, "product": product, "categories": selectors.shop_categories(shop)},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def product_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        product = services.product_toggle_available(owner=_user(request), product_id=pk)
    except NotFound:
        raise Http404("No such product.")
    state = "available" if product.is_available else "unavailable"
    messages.success(request, f"“{product.name}” is now {state}.")
    return redirect("storefront:products")


def _confirm(request: HttpRequest, shop: Shop, **context: Any) -> HttpResponse:
    """A confirmation step as a page (no script): GET shows what will happen and a form that POSTs it."""
    return render(request, "storefront/confirm.html", {"shop": shop, **context})


@login_required
@require_http_methods(["GET", "POST"])
def product_delete(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "GET":
        shop = _shop_or_404(request)
        try:
            product = selectors.product_get(shop, pk)
        except NotFound:
            raise Http404("No such product.")
        return _confirm(
            request,
            shop,
            title=f"Delete “{product.name}”?",
            question=f"“{product.name}” will disappear from your store and your product list.",
            consequence="If it has orders it is archived instead, so the orders keep their lines.",
            action=request.path,
            fields=[],
            yes="Delete it",
            no="Keep it",
            back="/storefront/products/",
        )
    try:
        outcome = services.product_delete(owner=_user(request), product_id=pk)
    except NotFound:
        raise Http404("No such product.")
    messages.success(
        request,
        "Product deleted." if outcome == "deleted" else "Product archived (it has orders, so it is kept).",
    )
    return redirect("storefront:products")


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    shop = _shop_or_404(request)
    status = request.GET.get("status") or None
    if status not in (None, *OrderStatus.values):
        status = None
    page = Paginator(selectors.order_list(shop, status=status), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "storefront/orders.html",
        {
            "shop": shop,
            "page": page,
            "status": status or "",
            "statuses": OrderStatus.choices,
            # Only asked when there is no order to show (the empty state says what to do next).
            "has_products": bool(page.object_list) or selectors.product_list(shop).exists(),
        },
    )


@login_required
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    shop = _shop_or_404(request)
    try:
        order = selectors.order_get(shop, pk)
    except NotFound:
        raise Http404("No such order.")
    return render(
        request,
        "storefront/order_detail.html",
        {
            "shop": shop,
            "order": order,
            "items": list(order.items.all()),
            "timeline": selectors.order_timeline(order),
        },
    )


def _order_change(
    request: HttpRequest,
    pk: int,
    form: Form,
    invalid: str,
    apply: Callable[[dict[str, Any]], Order],
    done: Callable[[Order], str],
) -> HttpResponse:
    """Shared POST flow of the order-detail buttons: validate, call one service, report, back to the order."""
    if not form.is_valid():
        messages.error(request, invalid)
        return redirect("storefront:order", pk=pk)
    try:
        order = apply(form.cleaned_data)
    except NotFound:
        raise Http404("No such order.")
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("storefront:order", pk=pk)
    messages.success(request, done(order))
    return redirect("storefront:order", pk=pk)


#: The order changes that ask first (a GET of the change's URL is the confirmation page).
CONFIRM = {
    ("status", "cancelled"): (
        "Cancel order {number}?",
        "The customer's order page will say it was cancelled, and its items go back into stock.",
        "Cancel the order",
    ),
    ("payment_status", "refunded"): (
        "Record a refund for {number}?",
        "Do this after you have paid the money back; it cannot be undone.",
        "Record the refund",
    ),
}


def _order_confirm(request: HttpRequest, pk: int, field: str) -> HttpResponse:
    shop = _shop_or_404(request)
    try:
        order = selectors.order_get(shop, pk)
    except NotFound:
        raise Http404("No such order.")
    value = request.GET.get(field, "")
    if (field, value) not in CONFIRM:
        return redirect("storefront:order", pk=pk)
    title, consequence, yes = CONFIRM[(field, value)]
    return _confirm(
        request,
        shop,
        title=title.format(number=order.number),
        question=f"{order.customer_name}, {order.total} {order.currency}, placed {order.created_at:%d %b %Y}.",
        consequence=consequence,
        action=request.path,
        fields=[(field, value)],
        yes=yes,
        no="Go back",
        back=f"/storefront/orders/{pk}/",
    )


@login_required
@require_http_methods(["GET", "POST"])
def order_status(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "GET":
        return _order_confirm(request, pk, "status")
    return _order_change(
        request,
        pk,
        StatusForm(request.POST),
        "Unknown status.",
        lambda data: services.order_set_status(owner=_user(request), order_id=pk, status=data["status"]),
        lambda order: f"Order {order.number} is now {order.get_status_display().lower()}.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def order_payment(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "GET":
        return _order_confirm(request, pk, "payment_status")
    return _order_change(
        request,
        pk,
        PaymentForm(request.POST),
        "Unknown payment status.",
        lambda data: services.order_set_payment(
            owner=_user(request), order_id=pk, payment_status=data["payment_status"]
        ),
        lambda order: f"Payment of {order.number}: {order.get_payment_status_display().lower()}.",
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


_NUMERIC = re.compile(r"[+-]?[\d\s().,-]*")


def _safe_cell(value: str) -> str:
    # Spreadsheet formula injection: a customer-typed cell must never start a formula when opened in Excel.
    # Plain numbers (a phone like "+91 98765 43210") cannot be formulas and stay as they are.
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMERIC.fullmatch(value):
        return "'" + value
    return value


def csv_stream(rows: Iterator[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([_safe_cell(c) for c in row])


@login_required
@require_GET
def order_export(request: HttpRequest) -> StreamingHttpResponse:
    shop = _shop_or_404(request)
    status = request.GET.get("status") or None
    if status not in (None, *OrderStatus.values):
        status = None
    response = StreamingHttpResponse(
        csv_stream(selectors.order_csv_rows(shop, status=status)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{shop.slug}-orders.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
