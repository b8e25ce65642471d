"""Storefront services: rules, error codes, and that a failure writes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bazaar.accounts.models import User
from bazaar.core import sql
from bazaar.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from bazaar.storefront import services
from bazaar.storefront.models import Order, OrderIdempotencyKey, OrderItem, Product, Shop, ShopSlugHistory
from bazaar.storefront.services import OrderLine

pytestmark = pytest.mark.django_db


def _order(slug: str, lines: list[OrderLine], key: str = "k1", **kw: Any) -> services.Placed:
    data = {"customer_name": "Asha", "phone": "+91 98765 43210", "address": "1 MG Road", **kw}
    return services.order_place(slug=slug, lines=lines, idempotency_key=key, **data)


def _nothing_written(product: Product, stock: int) -> None:
    product.refresh_from_db()
    assert product.stock == stock
    assert Order.objects.count() == 0
    assert OrderItem.objects.count() == 0
    assert OrderIdempotencyKey.objects.count() == 0


# --- shops -------------------------------------------------------------------------------------------------


def test_vendor_signup_creates_account_and_shop_with_derived_slug() -> None:
    shop = services.vendor_signup(
        username="nina", password="a-long-secret-42", email="nina@example.com", shop_name="Nina's Sweets!"
    )
    assert shop.slug == "ninas-sweets"
    assert shop.owner.username == "nina"
    assert shop.owner.check_password("a-long-secret-42")
    assert shop.contact_email == "nina@example.com"
    again = services.vendor_signup(
        username="nino", password="a-long-secret-42", email="nino@example.com", shop_name="Nina's Sweets"
    )
    assert again.slug == "ninas-sweets-2"


def test_vendor_signup_weak_password_writes_nothing() -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.vendor_signup(username="nina", password="123", email="n@example.com", shop_name="N Shop")
    assert exc.value.code == "validation_error"
    assert not User.objects.filter(username="nina").exists()
    assert Shop.objects.count() == 0


def test_vendor_signup_taken_slug_writes_nothing(vendor: User) -> None:
    with pytest.raises(Conflict) as exc:
        services.vendor_signup(
            username="nina",
            password="a-long-secret-42",
            email="n@example.com",
            shop_name="X",
            slug="vera-spices",
        )
    assert exc.value.code == "slug_taken"
    assert not User.objects.filter(username="nina").exists()
    assert Shop.objects.count() == 1


@pytest.mark.parametrize("slug", ["ab", "Has Space", "UPPER_", "-lead", "api", "a--b"])
def test_invalid_slug_is_refused(make_user: Any, slug: str) -> None:
    user = make_user("nina")
    with pytest.raises(ValidationFailed) as exc:
        services.shop_create(owner=user, name="Nina", slug=slug)
    assert exc.value.code == "invalid_slug"
    assert Shop.objects.count() == 0


def test_second_shop_for_same_user_is_a_conflict(vendor: User) -> None:
    with pytest.raises(Conflict) as exc:
        services.shop_create(owner=vendor, name="Another")
    assert exc.value.code == "shop_exists"
    assert Shop.objects.count() == 1


def test_slug_change_keeps_history_and_old_slug_stays_reserved(vendor: User, make_user: Any) -> None:
    shop = services.shop_update(owner=vendor, slug="vera-masala", name="Vera Masala")
    assert (shop.slug, shop.name) == ("vera-masala", "Vera Masala")
    assert list(ShopSlugHistory.objects.values_list("slug", flat=True)) == ["vera-spices"]
    other = make_user("olga")
    with pytest.raises(Conflict) as exc:
        services.shop_create(owner=other, name="Olga", slug="vera-spices")
    assert exc.value.code == "slug_taken"
    assert not Shop.objects.filter(owner=other).exists()
    # Moving back to a former slug of our own is allowed and it stops being a redirect.
    shop = services.shop_update(owner=vendor, slug="vera-spices")
    assert shop.slug == "vera-spices"
    assert list(ShopSlugHistory.objects.values_list("slug", flat=True)) == ["vera-masala"]


def test_shop_update_without_shop_is_not_found(make_user: Any) -> None:
    with pytest.raises(NotFound) as exc:
        services.shop_update(owner=make_user("nobody"), name="X")
    assert exc.value.code == "no_shop"


# --- products ----------------------------------------------------------------------------------------------


def test_product_create_and_name_unique_within_shop_only(vendor: User, other_vendor: User) -> None:
    p = services.product_create(owner=vendor, name="Tea", mrp="100", price="90.50", stock=3)
    assert (p.price, p.mrp, p.stock, p.is_available, p.is_listed) == (
        Decimal("90.50"),
        Decimal("100.00"),
        3,
        True,
        True,
    )
    with pytest.raises(Conflict) as exc:
        services.product_create(owner=vendor, name="tea", mrp="1", price="1")
    assert exc.value.code == "duplicate_name"
    assert Product.objects.filter(shop=vendor.shop).count() == 1
    services.product_create(owner=other_vendor, name="Tea", mrp="1", price="1")
    assert Product.objects.count() == 2


@pytest.mark.parametrize(
    ("mrp", "price", "stock", "code"),
    [
        ("100", "101", 1, "price_above_mrp"),
        ("-1", "0", 1, "invalid_price"),
        ("10", "-1", 1, "invalid_price"),
        ("10", "1.005", 1, "invalid_price"),
        ("10", "abc", 1, "invalid_price"),
        ("10", "5", -1, "invalid_stock"),
    ],
)
def test_product_validation_writes_nothing(vendor: User, mrp: str, price: str, stock: int, code: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.product_create(owner=vendor, name="Tea", mrp=mrp, price=price, stock=stock)
    assert exc.value.code == code
    assert Product.objects.count() == 0


def test_product_update_checks_price_against_mrp(vendor: User, make_product: Any) -> None:
    p = make_product(vendor)
    with pytest.raises(ValidationFailed) as exc:
        services.product_update(owner=vendor, product_id=p.pk, price=Decimal("150"))
    assert exc.value.code == "price_above_mrp"
    p.refresh_from_db()
    assert p.price == Decimal("90.00")
    services.product_update(owner=vendor, product_id=p.pk, mrp=Decimal("200"), price=Decimal("150"), stock=7)
    p.refresh_from_db()
    assert (p.mrp, p.price, p.stock) == (Decimal("200.00"), Decimal("150.00"), 7)


def test_another_vendors_product_is_not_found_for_every_write(
    vendor: User, other_vendor: User, make_product: Any
) -> None:
    p = make_product(other_vendor)
    for call in (
        lambda: services.product_update(owner=vendor, product_id=p.pk, name="Mine"),
        lambda: services.product_toggle_available(owner=vendor, product_id=p.pk),
        lambda: services.product_delete(owner=vendor, product_id=p.pk),
    ):
        with pytest.raises(NotFound) as exc:
            call()
        assert exc.value.code == "product_not_found"
    p.refresh_from_db()
    assert (p.name, p.is_available, p.is_archived) == ("Tea", True, False)


def test_toggle_and_delete_or_archive(vendor: User, make_product: Any) -> None:
    p = make_product(vendor)
    assert services.product_toggle_available(owner=vendor, product_id=p.pk).is_available is False
    assert services.product_toggle_available(owner=vendor, product_id=p.pk).is_available is True
    fresh = make_product(vendor, name="Coffee")
    assert services.product_delete(owner=vendor, product_id=fresh.pk) == "deleted"
    assert not Product.objects.filter(pk=fresh.pk).exists()
    _order("vera-spices", [OrderLine(p.pk, 1)])
    assert services.product_delete(owner=vendor, product_id=p.pk) == "archived"
    p.refresh_from_db()
    assert (p.is_archived, p.is_listed, p.is_available) == (True, False, False)
    # The name is free again for a new product.
    assert services.product_create(owner=vendor, name="Tea", mrp="1", price="1").name == "Tea"


# --- orders ------------------------------------------------------------------------------------------------


def test_order_place_recomputes_price_and_decrements_stock(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor, stock=5)
    coffee = make_product(vendor, name="Coffee", price="250.00", mrp="300.00", stock=2)
    placed = _order("vera-spices", [OrderLine(tea.pk, 2), OrderLine(coffee.pk, 2), OrderLine(tea.pk, 1)])
    assert placed.created
    order = placed.order
    assert order.total == Decimal("770.00")  # 3 × 90 + 2 × 250
    assert order.status == "placed"
    assert order.payment_status == "pending"
    assert order.currency == "INR"
    assert [(i.product_name, i.quantity, i.unit_price) for i in order.items.order_by("product_id")] == [
        ("Tea", 3, Decimal("90.00")),
        ("Coffee", 2, Decimal("250.00")),
    ]
    tea.refresh_from_db()
    coffee.refresh_from_db()
    assert (tea.stock, coffee.stock) == (2, 0)


def test_out_of_stock_writes_nothing(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor, stock=2)
    coffee = make_product(vendor, name="Coffee", stock=5)
    with pytest.raises(Conflict) as exc:
        _order("vera-spices", [OrderLine(coffee.pk, 1), OrderLine(tea.pk, 3)])
    assert exc.value.code == "out_of_stock"
    assert exc.value.details == {"product_id": tea.pk, "available": 2}
    assert "Only 2" in exc.value.message
    _nothing_written(tea, 2)
    coffee.refresh_from_db()
    assert coffee.stock == 5


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"is_available": False}, Conflict, "product_unavailable"),
        ({"is_listed": False}, ValidationFailed, "unknown_product"),
        ({"is_archived": True}, ValidationFailed, "unknown_product"),
    ],
)
def test_unorderable_product_writes_nothing(
    vendor: User, make_product: Any, change: dict[str, bool], error: type[DomainError], code: str
) -> None:
    tea = make_product(vendor, **change)
    with pytest.raises(error) as exc:
        _order("vera-spices", [OrderLine(tea.pk, 1)])
    assert exc.value.code == code
    _nothing_written(tea, 10)


def test_product_of_another_shop_cannot_be_ordered_here(
    vendor: User, other_vendor: User, make_product: Any
) -> None:
    theirs = make_product(other_vendor)
    with pytest.raises(ValidationFailed) as exc:
        _order("vera-spices", [OrderLine(theirs.pk, 1)])
    assert exc.value.code == "unknown_product"
    _nothing_written(theirs, 10)


def test_changed_price_is_refused(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor)
    with pytest.raises(Conflict) as exc:
        _order("vera-spices", [OrderLine(tea.pk, 1, Decimal("80.00"))])
    assert exc.value.code == "price_changed"
    _nothing_written(tea, 10)
    assert _order("vera-spices", [OrderLine(tea.pk, 1, Decimal("90"))]).created


@pytest.mark.parametrize(
    ("kw", "lines", "code"),
    [
        ({}, [], "empty_order"),
        ({}, [OrderLine(1, 0)], "invalid_quantity"),
        ({"customer_name": " "}, None, "invalid_customer"),
        ({"phone": "call me"}, None, "invalid_customer"),
        ({"address": ""}, None, "invalid_customer"),
    ],
)
def test_invalid_order_input_writes_nothing(
    vendor: User, make_product: Any, kw: dict[str, str], lines: Any, code: str
) -> None:
    tea = make_product(vendor)
    with pytest.raises(ValidationFailed) as exc:
        _order("vera-spices", lines if lines is not None else [OrderLine(tea.pk, 1)], **kw)
    assert exc.value.code == code
    _nothing_written(tea, 10)


def test_unknown_store_is_not_found(vendor: User) -> None:
    with pytest.raises(NotFound) as exc:
        _order("nope-shop", [OrderLine(1, 1)])
    assert exc.value.code == "shop_not_found"


def test_idempotent_retry_returns_first_order_and_other_body_is_422(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor)
    first = _order("vera-spices", [OrderLine(tea.pk, 2)], key="abc")
    again = _order("vera-spices", [OrderLine(tea.pk, 2)], key="abc")
    assert first.created
    assert not again.created
    assert again.order.pk == first.order.pk
    with pytest.raises(ValidationFailed) as exc:
        _order("vera-spices", [OrderLine(tea.pk, 3)], key="abc")
    assert exc.value.code == "idempotency_key_reused"
    tea.refresh_from_db()
    assert tea.stock == 8
    assert Order.objects.count() == 1


def test_vendor_email_is_sent_after_commit(
    vendor: User, make_product: Any, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    tea = make_product(vendor)
    with django_capture_on_commit_callbacks(execute=True):
        placed = _order("vera-spices", [OrderLine(tea.pk, 2)])
        assert mailoutbox == []  # not before the commit
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["vera@example.com"]
    assert placed.order.number in mail.subject
    assert "2 x Tea @ 90.00 = 180.00" in mail.body


def test_email_task_reads_the_order_in_one_statement_with_every_line(
    vendor: User, make_product: Any, mailoutbox: list[Any], django_assert_num_queries: Any
) -> None:
    from bazaar.storefront.tasks import send_order_email

    tea, salt = make_product(vendor), make_product(vendor, name="Salt", price="20.00")
    placed = _order("vera-spices", [OrderLine(salt.pk, 1), OrderLine(tea.pk, 2)])
    with django_assert_num_queries(1):
        assert send_order_email(placed.order.pk) == "sent"
    (mail,) = mailoutbox
    assert mail.to == ["vera@example.com"]
    assert mail.subject == f"New order {placed.order.number} at Vera's Spices"
    lines = [ln for ln in mail.body.splitlines() if " x " in ln]
    assert lines == ["2 x Tea @ 90.00 = 180.00", "1 x Salt @ 20.00 = 20.00"]  # in line order
    assert f"Total: 200.00 {placed.order.currency}" in mail.body
    assert f"/s/vera-spices/orders/{placed.order.number}/" in mail.body


def test_email_task_falls_back_to_the_owner_and_skips_what_it_cannot_send(
    vendor: User, make_product: Any, mailoutbox: list[Any]
) -> None:
    from bazaar.storefront.tasks import send_order_email

    placed = _order("vera-spices", [OrderLine(make_product(vendor).pk, 1)])
    Shop.objects.filter(owner=vendor).update(contact_email="")
    vendor.email = "vera.owner@example.com"
    vendor.save(update_fields=["email"])
    assert send_order_email(placed.order.pk) == "sent"
    assert [m.to for m in mailoutbox] == [["vera.owner@example.com"]]
    User.objects.filter(pk=vendor.pk).update(email="")
    assert send_order_email(placed.order.pk) == "no-recipient"
    assert send_order_email(placed.order.pk + 1000) == "missing"
    assert len(mailoutbox) == 1  # neither wrote a mail


def test_failed_order_sends_no_email(
    vendor: User, make_product: Any, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    tea = make_product(vendor, stock=0)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict):
        _order("vera-spices", [OrderLine(tea.pk, 1)])
    assert mailoutbox == []


def test_status_machine_and_cancel_returns_stock(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor, stock=5)
    order = _order("vera-spices", [OrderLine(tea.pk, 3)]).order
    assert (
        services.order_set_status(owner=vendor, order_id=order.pk, status="confirmed").status == "confirmed"
    )
    with pytest.raises(Conflict) as exc:
        services.order_set_status(owner=vendor, order_id=order.pk, status="delivered")
    assert exc.value.code == "illegal_transition"
    assert exc.value.details == {"from": "confirmed", "to": "delivered", "allowed": ["cancelled", "shipped"]}
    order.refresh_from_db()
    assert order.status == "confirmed"
    services.order_set_status(owner=vendor, order_id=order.pk, status="cancelled")
    tea.refresh_from_db()
    assert tea.stock == 5
    with pytest.raises(Conflict):
        services.order_set_status(owner=vendor, order_id=order.pk, status="placed")
    tea.refresh_from_db()
    assert tea.stock == 5


def test_full_path_and_terminal_state(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor)
    order = _order("vera-spices", [OrderLine(tea.pk, 1)]).order
    for status in ("confirmed", "shipped", "delivered"):
        services.order_set_status(owner=vendor, order_id=order.pk, status=status)
    for status in ("cancelled", "shipped", "placed"):
        with pytest.raises(Conflict):
            services.order_set_status(owner=vendor, order_id=order.pk, status=status)
    with pytest.raises(ValidationFailed) as exc:
        services.order_set_status(owner=vendor, order_id=order.pk, status="lost")
    assert exc.value.code == "invalid_status"
    tea.refresh_from_db()
    assert tea.stock == 9


def test_payment_is_separate_from_fulfilment(vendor: User, make_product: Any) -> None:
    tea = make_product(vendor)
    order = _order("vera-spices", [OrderLine(tea.pk, 1)]).order
    assert (
        services.order_set_payment(owner=vendor, order_id=order.pk, payment_status="paid").status == "placed"
    )
    with pytest.raises(Conflict):
        services.order_set_payment(owner=vendor, order_id=order.pk, payment_status="pending")
    assert (
        services.order_set_payment(owner=vendor, order_id=order.pk, payment_status="refunded").payment_status
        == "refunded"
    )


def test_another_vendors_order_is_not_found(vendor: User, other_vendor: User, make_product: Any) -> None:
    tea = make_product(other_vendor)
    order = _order("otto-tea", [OrderLine(tea.pk, 1)]).order
    with pytest.raises(NotFound) as exc:
        services.order_set_status(owner=vendor, order_id=order.pk, status="cancelled")
    assert exc.value.code == "order_not_found"
    with pytest.raises(NotFound):
        services.order_set_payment(owner=vendor, order_id=order.pk, payment_status="paid")
    order.refresh_from_db()
    tea.refresh_from_db()
    assert (order.status, order.payment_status, tea.stock) == ("placed", "pending", 9)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": Decimal("95.00")}, "price_changed"),
        ({"stock": 0}, "out_of_stock"),
        ({"is_available": False}, "product_unavailable"),
    ],
)
def test_change_between_read_and_stock_update_rolls_back(
    vendor: User, make_product: Any, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], code: str
) -> None:
    """The stock UPDATE re-checks price/stock/availability in its WHERE: a change that lands after the
    products were read (here: while the order lines are written) makes the order fail and roll back."""
    tea = make_product(vendor, stock=5)
    original = sql.insert

    def racing_write(objs: Any, fields: Any) -> Any:
        if isinstance(objs[0], OrderItem):
            Product.objects.filter(pk=tea.pk).update(**change)
        return original(objs, fields)

    monkeypatch.setattr(sql, "insert", racing_write)
    with pytest.raises(Conflict) as exc:
        _order("vera-spices", [OrderLine(tea.pk, 2)])
    assert exc.value.code == code
    assert Order.objects.count() == 0
    assert OrderIdempotencyKey.objects.count() == 0
    tea.refresh_from_db()
    assert tea.stock == 5  # the racing write itself was rolled back with the order (same transaction here)


@pytest.mark.parametrize("email", ["", "not-an-email"])
def test_vendor_signup_needs_a_valid_email(email: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.vendor_signup(username="nina", password="a-long-secret-42", email=email, shop_name="Nina")
    assert exc.value.code == "invalid_email"
    assert not User.objects.filter(username="nina").exists()
    assert Shop.objects.count() == 0


def test_shop_update_rejects_bad_contact_email(vendor: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.shop_update(owner=vendor, contact_email="nope", name="Renamed")
    assert exc.value.code == "invalid_email"
    shop = Shop.objects.get(owner=vendor)
    assert (shop.name, shop.contact_email) == ("Vera's Spices", "vera@example.com")
