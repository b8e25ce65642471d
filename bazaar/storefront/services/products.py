"""Product writes. Every change that the public page shows invalidates the shop's page after commit."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat

from bazaar.accounts.models import User
from bazaar.core.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from bazaar.storefront import conf, images
from bazaar.storefront.models import Product, Shop

CENT = Decimal("0.01")
MAX_PRICE = Decimal("9999999999.99")
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}


def owner_shop(owner: User, *, lock: bool = False) -> Shop:
    """The user's shop or NotFound ``no_shop``."""
    qs = Shop.objects.filter(owner=owner)
    if lock:
        qs = qs.select_for_update()
    shop = qs.first()
    if shop is None:
        raise NotFound("You have no shop yet.", code="no_shop")
    return shop


def _money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field} must be a number.", code="invalid_price", details={"field": field})
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        raise ValidationFailed(f"{field} must be 0 or more.", code="invalid_price", details={"field": field})
    if amount != amount.quantize(CENT):
        raise ValidationFailed(
            f"{field} has at most 2 decimal places.", code="invalid_price", details={"field": field}
        )
    return amount.quantize(CENT)


def _validate(product: Product) -> None:
    product.name = (product.name or "").strip()
    if not product.name or len(product.name) > 120:
        raise ValidationFailed("A name of 1–120 characters is required.", code="invalid_name")
    product.mrp = _money(product.mrp, "mrp")
    product.price = _money(product.price, "price")
    if product.price > product.mrp:
        raise ValidationFailed(
            "The selling price cannot be above the MRP.", code="price_above_mrp", details={"field": "price"}
        )
    if not isinstance(product.stock, int) or product.stock < 0 or product.stock > 10_000_000:
        raise ValidationFailed(
            "Stock must be a whole number, 0 or more.", code="invalid_stock", details={"field": "stock"}
        )
    product.category = " ".join((product.category or "").split())
    if len(product.category) > 60:
        raise ValidationFailed(
            "A category has at most 60 characters.", code="invalid_category", details={"field": "category"}
        )


def image_check(image: UploadedFile | None) -> images.Thumbs | None:
    """Size, declared type, then a real decode: the thumbnails are made here, before any write, so a file that
    only claims to be an image is refused with nothing stored. Raises PayloadTooLarge ``image_too_large``,
    ValidationFailed ``invalid_image``. The one check for every way in (the vendor's form and the API through
    the services below, the Django admin through its form)."""
    if image is None:
        return None
    limit = conf.max_image_bytes()
    if image.size is not None and image.size > limit:
        raise PayloadTooLarge(
            f"The image is {filesizeformat(image.size)}; the largest accepted is {filesizeformat(limit)}.",
            code="image_too_large",
            details={"field": "image", "limit": limit, "size": image.size},
        )
    if (image.content_type or "") not in IMAGE_TYPES:
        raise ValidationFailed(
            "The image must be PNG, JPEG, WebP or GIF.", code="invalid_image", details={"field": "image"}
        )
    return images.render(image)


def image_attach(product: Product, image: UploadedFile, thumbs: images.Thumbs) -> None:
    """Store the checked upload and its thumbnails on ``product`` (not saved: the caller saves the row)."""
    product.image.save(image.name or "image", image, save=False)
    product.thumb_small, product.thumb = images.store(thumbs)
    product.thumb_width, product.thumb_height = thumbs.width, thumbs.height


def image_detach(product: Product) -> None:
    """Forget the photo and its thumbnails on ``product`` (not saved); the store shows the placeholder."""
    product.image = None
    product.thumb_small = product.thumb = ""
    product.thumb_width = product.thumb_height = 0


def _name_taken(shop: Shop, name: str, exclude_pk: int | None = None) -> bool:
    qs = Product.objects.live().filter(shop=shop, name__iexact=name)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def product_create(
    *,
    owner: User,
    name: str,
    mrp: Decimal | str,
    price: Decimal | str,
    stock: int = 0,
    description: str = "",
    is_available: bool = True,
    is_listed: bool = True,
    image: UploadedFile | None = None,
    category: str = "",
) -> Product:
    """Add a product to the owner's shop.

    Rules: name unique within the shop (case-insensitive, among non-archived products), 0 <= price <= MRP,
    stock >= 0. Raises NotFound ``no_shop``, ValidationFailed, Conflict ``duplicate_name``, PayloadTooLarge.
    Writes nothing on failure; invalidates the store page after commit.
    """
    thumbs = image_check(image)
    shop = owner_shop(owner)
    product = Product(
        shop=shop,
        name=name,
        description=(description or "").strip(),
        mrp=mrp,
        price=price,
        stock=stock,
        is_available=is_available,
        is_listed=is_listed,
        category=category,
    )
    _validate(product)
    try:
        with transaction.atomic():
            if _name_taken(shop, product.name):
                raise Conflict("A product with that name exists in your shop.", code="duplicate_name")
            if image is not None and thumbs is not None:
                image_attach(product, image, thumbs)
            product.save()
    except IntegrityError:
        raise Conflict("A product with that name exists in your shop.", code="duplicate_name")
    return product


EDITABLE = ("name", "description", "mrp", "price", "stock", "is_available", "is_listed", "category")


def product_update(
    *, owner: User, product_id: int, image: UploadedFile | None = None, **changes: Any
) -> Product:
    """Change fields of one of the owner's products (any of ``EDITABLE``; others are a ValidationFailed).

    Locks the product row so a concurrent order's stock decrement is not lost. Raises NotFound
    ``product_not_found`` for another shop's product, ValidationFailed, Conflict ``duplicate_name``.
    """
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed("Unknown fields.", code="unknown_fields", details=sorted(unknown))
    thumbs = image_check(image)
    try:
        with transaction.atomic():
            product = (
                Product.objects.select_for_update()
                .select_related("shop")
                .filter(pk=product_id, shop__owner=owner, is_archived=False)
                .first()
            )
            if product is None:
                raise NotFound("No such product.", code="product_not_found")
            for field, value in changes.items():
                if value is not None:
                    setattr(product, field, value)
            product.description = (product.description or "").strip()
            _validate(product)
            if _name_taken(product.shop, product.name, exclude_pk=product.pk):
                raise Conflict("A product with that name exists in your shop.", code="duplicate_name")
            if image is not None and thumbs is not None:
                image_attach(product, image, thumbs)
            product.save()
    except IntegrityError:
        raise Conflict("A product with that name exists in your shop.", code="duplicate_name")
    return product


def product_toggle_available(*, owner: User, product_id: int) -> Product:
    """Flip the "available" switch (the dashboard's one-click toggle). Locks the row; NotFound otherwise."""
    with transaction.atomic():
        product = (
            Product.objects.select_for_update()
            .select_related("shop")
            .filter(pk=product_id, shop__owner=owner, is_archived=False)
            .first()
        )
        if product is None:
            raise NotFound("No such product.", code="product_not_found")
        product.is_available = not product.is_available
        product.save(update_fields=["is_available", "updated_at"])
    return product


def product_delete(*, owner: User, product_id: int) -> str:
    """Delete a product, or archive it when orders refer to it (history must keep its line items).

    Returns ``"deleted"`` or ``"archived"``. Locks the row; NotFound ``product_not_found`` otherwise.
    """
    with transaction.atomic():
        product = (
            Product.objects.select_for_update()
            .select_related("shop")
            .filter(pk=product_id, shop__owner=owner, is_archived=False)
            .first()
        )
        if product is None:
            raise NotFound("No such product.", code="product_not_found")
        if product.order_items.exists():
            product.is_archived = True
            product.is_listed = False
            product.is_available = False
            product.save(update_fields=["is_archived", "is_listed", "is_available", "updated_at"])
            return "archived"
        product.delete()
        return "deleted"
