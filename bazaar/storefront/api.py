"""Storefront JSON API (mounted at /api/storefront/). Vendor endpoints need a token or session; the public store
and order placement are anonymous. Another shop's product or order is always 404."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import HeaderEx, P, Query, Router, Status

from bazaar.accounts.auth import current_user, user_auth
from bazaar.accounts.codes import Code as AccountsCode
from bazaar.accounts.services import token_create
from bazaar.core.codes import CoreCode, answers
from bazaar.core.errors import NotFound, ValidationFailed
from bazaar.core.pagination import Page, PageParams, paginate
from bazaar.core.schemas import ErrorOut, Int64, Line
from bazaar.storefront import selectors, services
from bazaar.storefront.codes import Code
from bazaar.storefront.schemas import (
    DeletedOut,
    OrderIn,
    OrderListItemOut,
    OrderOut,
    OrderPaymentIn,
    ProductIn,
    ProductOut,
    ProductPatch,
    PublicOrderOut,
    ShopIn,
    ShopOut,
    SignupOut,
    StatusIn,
    StoreOut,
    SummaryOut,
    VendorSignupIn,
    placed_body,
)
from bazaar.storefront.views.vendor import csv_stream

router = Router(tags=["storefront"])
ERRORS: dict[int, Any] = {400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ErrorOut}


def _shop(request: HttpRequest) -> Any:
    return services.owner_shop(current_user(request))


@router.post("/signup", response={201: SignupOut, **ERRORS}, summary="Sign up as a vendor (account + shop)")
@answers(
    {
        409: [Code.SLUG_TAKEN, AccountsCode.USERNAME_TAKEN],
        422: [Code.INVALID_CURRENCY, Code.INVALID_EMAIL, Code.INVALID_SHOP_NAME, Code.INVALID_SLUG],
    }
)
def signup(request: HttpRequest, payload: VendorSignupIn) -> Any:
    shop = services.vendor_signup(**payload.dict())
    return Status(201, {"shop": shop, "token": token_create(user=shop.owner, name="signup").secret})


@router.get("/shop", response={200: ShopOut, **ERRORS}, auth=user_auth)
@answers({404: [Code.NO_SHOP]})
def shop_get(request: HttpRequest) -> Any:
    return _shop(request)


@router.post(
    "/shop", response={201: ShopOut, **ERRORS}, auth=user_auth, summary="Open a shop (signed-in user)"
)
@answers(
    {
        409: [Code.SHOP_EXISTS, Code.SLUG_TAKEN],
        422: [Code.INVALID_CURRENCY, Code.INVALID_EMAIL, Code.INVALID_SHOP_NAME, Code.INVALID_SLUG],
    }
)
def shop_create(request: HttpRequest, payload: ShopIn) -> Any:
    data = {k: v for k, v in payload.dict().items() if v is not None}
    if "name" not in data:
        raise ValidationFailed("A shop name is required.", code="invalid_shop_name")
    return Status(201, services.shop_create(owner=current_user(request), **data))


@router.patch(
    "/shop", response={200: ShopOut, **ERRORS}, auth=user_auth, summary="Change name, link, contact"
)
@answers(
    {
        404: [Code.NO_SHOP],
        409: [Code.SLUG_TAKEN],
        422: [Code.INVALID_CURRENCY, Code.INVALID_EMAIL, Code.INVALID_SHOP_NAME, Code.INVALID_SLUG],
    }
)
def shop_update(request: HttpRequest, payload: ShopIn) -> Any:
    return services.shop_update(owner=current_user(request), **payload.dict())


@router.get("/products", response={200: Page[ProductOut], **ERRORS}, auth=user_auth)
@answers({404: [Code.NO_SHOP], 422: [CoreCode.INVALID_LIMIT]})
def product_list(request: HttpRequest, page: Query[PageParams]) -> Any:
    return paginate(selectors.product_list(_shop(request)), page.limit, page.offset)


@router.post("/products", response={201: ProductOut, **ERRORS}, auth=user_auth)
@answers({404: [Code.NO_SHOP], 409: [Code.DUPLICATE_NAME], 422: [Code.INVALID_NAME, Code.PRICE_ABOVE_MRP]})
def product_create(request: HttpRequest, payload: ProductIn) -> Any:
    return Status(201, services.product_create(owner=current_user(request), **payload.dict()))


@router.get("/products/{product_id}", response={200: ProductOut, **ERRORS}, auth=user_auth)
@answers({404: [Code.NO_SHOP, Code.PRODUCT_NOT_FOUND]})
def product_get(request: HttpRequest, product_id: Int64) -> Any:
    return selectors.product_get(_shop(request), product_id)


@router.patch("/products/{product_id}", response={200: ProductOut, **ERRORS}, auth=user_auth)
@answers(
    {
        404: [Code.PRODUCT_NOT_FOUND],
        409: [Code.DUPLICATE_NAME],
        422: [Code.INVALID_NAME, Code.PRICE_ABOVE_MRP],
    }
)
def product_update(request: HttpRequest, product_id: Int64, payload: ProductPatch) -> Any:
    changes = payload.dict(exclude_unset=True)
    return services.product_update(owner=current_user(request), product_id=product_id, **changes)


@router.post("/products/{product_id}/toggle", response={200: ProductOut, **ERRORS}, auth=user_auth)
@answers({404: [Code.PRODUCT_NOT_FOUND]})
def product_toggle(request: HttpRequest, product_id: Int64) -> Any:
    return services.product_toggle_available(owner=current_user(request), product_id=product_id)


@router.delete(
    "/products/{product_id}",
    response={200: DeletedOut, **ERRORS},
    auth=user_auth,
    summary="Delete, or archive when orders refer to it",
)
@answers({404: [Code.PRODUCT_NOT_FOUND]})
def product_delete(request: HttpRequest, product_id: Int64) -> Any:
    return {"outcome": services.product_delete(owner=current_user(request), product_id=product_id)}


@router.get(
    "/orders", response={200: Page[OrderListItemOut], **ERRORS}, auth=user_auth, summary="Newest first"
)
@answers({404: [Code.NO_SHOP], 422: [CoreCode.INVALID_LIMIT, Code.INVALID_STATUS]})
def order_list(request: HttpRequest, page: Query[PageParams], status: Line | None = None) -> Any:
    return paginate(selectors.order_list(_shop(request), status=status), page.limit, page.offset)


@router.get(
    "/orders/export.csv",
    auth=user_auth,
    summary="All orders as CSV (streamed)",
    openapi_extra={
        "responses": {
            200: {
                "description": "The orders, one CSV row each.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            404: {"description": "No shop yet (`no_shop`)."},
        }
    },
)
@answers({404: [Code.NO_SHOP], 422: [Code.INVALID_STATUS]})
def order_export(request: HttpRequest, status: Line | None = None) -> StreamingHttpResponse:
    shop = _shop(request)
    selectors.order_list(
        shop, status=status
    )  # an unknown status is a 422 now, not an error inside the stream
    rows = selectors.order_csv_rows(shop, status=status)
    response = StreamingHttpResponse(csv_stream(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{shop.slug}-orders.csv"'
    return response


@router.get("/orders/{order_id}", response={200: OrderOut, **ERRORS}, auth=user_auth)
@answers({404: [Code.NO_SHOP, Code.ORDER_NOT_FOUND]})
def order_get(request: HttpRequest, order_id: Int64) -> Any:
    return selectors.order_get(_shop(request), order_id)


@router.post(
    "/orders/{order_id}/status",
    response={200: OrderOut, **ERRORS},
    auth=user_auth,
    summary="placed → confirmed → shipped → delivered; placed/confirmed → cancelled (returns stock)",
)
@answers(
    {404: [Code.NO_SHOP, Code.ORDER_NOT_FOUND], 409: [Code.ILLEGAL_TRANSITION], 422: [Code.INVALID_STATUS]}
)
def order_status(request: HttpRequest, order_id: Int64, payload: StatusIn) -> Any:
    order = services.order_set_status(owner=current_user(request), order_id=order_id, status=payload.status)
    return selectors.order_get(order.shop, order.pk)


@router.post("/orders/{order_id}/payment", response={200: OrderOut, **ERRORS}, auth=user_auth)
@answers(
    {
        404: [Code.NO_SHOP, Code.ORDER_NOT_FOUND],
        409: [Code.ILLEGAL_TRANSITION],
        422: [Code.INVALID_PAYMENT_STATUS],
    }
)
def order_payment(request: HttpRequest, order_id: Int64, payload: OrderPaymentIn) -> Any:
    order = services.order_set_payment(
        owner=current_user(request), order_id=order_id, payment_status=payload.payment_status
    )
    return selectors.order_get(order.shop, order.pk)


@router.get("/summary", response={200: SummaryOut, **ERRORS}, auth=user_auth, summary="Last 30 days")
@answers({404: [Code.NO_SHOP]})
def summary(request: HttpRequest) -> Any:
    return selectors.dashboard_summary(_shop(request))


# --- public -----------------------------------------------------------------------------------------------


@router.get("/stores/{slug}", response={200: StoreOut, **ERRORS}, summary="A public store and its products")
@answers({404: [Code.SHOP_NOT_FOUND]})
def store_get(request: HttpRequest, slug: Line) -> Any:
    shop, products = selectors.store_by_slug(slug)
    return {"name": shop.name, "slug": shop.slug, "currency": shop.currency, "products": products}


@router.post(
    "/stores/{slug}/orders",
    response={200: PublicOrderOut, 201: PublicOrderOut, **ERRORS},
    summary="Place an order (anonymous). Idempotency-Key header required: a retry returns the first order (200).",
)
@answers(
    {
        404: [Code.SHOP_NOT_FOUND],
        # product_changed: the product was edited between the order's read and its stock update (RACE_ONLY)
        409: [Code.OUT_OF_STOCK, Code.PRICE_CHANGED, Code.PRODUCT_CHANGED, Code.PRODUCT_UNAVAILABLE],
        422: [
            Code.IDEMPOTENCY_KEY_REQUIRED,
            Code.IDEMPOTENCY_KEY_REUSED,
            Code.INVALID_CUSTOMER,
            Code.INVALID_IDEMPOTENCY_KEY,
            Code.INVALID_LINE,
            Code.INVALID_QUANTITY,
            Code.TOO_MANY_LINES,
            Code.UNKNOWN_PRODUCT,
        ],
    }
)
def store_order(
    request: HttpRequest,
    slug: Line,
    payload: OrderIn,
    idempotency_key: HeaderEx[str, P(alias="Idempotency-Key")] = "",
) -> Any:
    # The plain case is answered before Django by bazaar.storefront.fast.fast_order (the same service call).
    if not idempotency_key.strip():
        raise ValidationFailed("The Idempotency-Key header is required.", code="idempotency_key_required")
    placed = services.order_place(
        slug=slug,
        lines=[services.OrderLine(i.product_id, i.quantity, i.unit_price) for i in payload.items],
        customer_name=payload.customer_name,
        phone=payload.phone,
        address=payload.address,
        idempotency_key=idempotency_key,
    )
    return Status(201 if placed.created else 200, placed_body(placed))


@router.get("/stores/{slug}/orders/{number}", response={200: PublicOrderOut, **ERRORS})
@answers({404: [Code.ORDER_NOT_FOUND]})
def store_order_get(request: HttpRequest, slug: Line, number: Line) -> Any:
    try:
        return selectors.order_public(slug, number)
    except NotFound:
        raise NotFound("No such order.", code="order_not_found")
