"""Shop writes: vendor signup, shop creation and settings (with slug history and 301s)."""

from __future__ import annotations

import functools
import re
import zoneinfo

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from bazaar.accounts.models import User
from bazaar.accounts.services import user_signup
from bazaar.core.errors import Conflict, NotFound, ValidationFailed
from bazaar.storefront.models import Shop, ShopSlugHistory

SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RESERVED_SLUGS = frozenset({"admin", "api", "static", "media", "new", "edit", "orders"})
CURRENCIES = ("INR", "USD", "EUR", "GBP")


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed("A shop name of 1–120 characters is required.", code="invalid_shop_name")
    return name


def _clean_currency(currency: str) -> str:
    currency = (currency or "").strip().upper()
    if currency not in CURRENCIES:
        raise ValidationFailed(
            f"Currency must be one of {', '.join(CURRENCIES)}.",
            code="invalid_currency",
            details={"allowed": list(CURRENCIES)},
        )
    return currency


def _clean_slug(slug: str) -> str:
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug) or len(slug) > 60 or len(slug) < 3 or slug in RESERVED_SLUGS:
        raise ValidationFailed(
            "The link must be 3–60 lowercase letters, digits and single hyphens.", code="invalid_slug"
        )
    return slug


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed(
                "Enter a valid e-mail address.", code="invalid_email", details={"field": "contact_email"}
            )
    return email


def _slug_taken(slug: str, *, by_other_than: Shop | None = None) -> bool:
    shops = Shop.objects.filter(slug=slug)
    history = ShopSlugHistory.objects.filter(slug=slug)
    if by_other_than is not None:
        shops = shops.exclude(pk=by_other_than.pk)
        history = history.exclude(shop=by_other_than)
    return shops.exists() or history.exists()


def _derive_slug(name: str) -> str:
    base = slugify(name)[:50].strip("-") or "shop"
    if len(base) < 3:
        base = f"{base}-shop"
    candidate, n = base, 2
    while _slug_taken(candidate) or candidate in RESERVED_SLUGS:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


DEFAULT_TIMEZONE = "Asia/Kolkata"


@functools.cache
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _clean_timezone(value: str) -> str:
    value = (value or "").strip()
    if value not in timezones():
        raise ValidationFailed(
            "Choose a time zone from the list.", code="invalid_timezone", details={"field": "timezone"}
        )
    return value


def shop_create(
    *,
    owner: User,
    name: str,
    slug: str = "",
    currency: str = "INR",
    contact_email: str = "",
    contact_phone: str = "",
    timezone: str = DEFAULT_TIMEZONE,
) -> Shop:
    """Open a shop for ``owner`` (one per user). The slug is chosen or derived from the name.

    Raises ValidationFailed (bad name/slug/currency), Conflict ``shop_exists`` (the user has one) or
    ``slug_taken`` (current or former slug of another shop; the unique index decides races). Writes nothing then.
    """
    name = _clean_name(name)
    currency = _clean_currency(currency)
    timezone = _clean_timezone(timezone)
    slug = _clean_slug(slug) if slug else ""
    try:
        with transaction.atomic():
            if Shop.objects.filter(owner=owner).exists():
                raise Conflict("You already have a shop.", code="shop_exists")
            if slug and _slug_taken(slug):
                raise Conflict("That link is taken; choose another.", code="slug_taken")
            shop = Shop.objects.create(
                owner=owner,
                name=name,
                slug=slug or _derive_slug(name),
                currency=currency,
                contact_email=_clean_email(contact_email or owner.email or ""),
                contact_phone=(contact_phone or "").strip()[:30],
                timezone=timezone,
            )
    except IntegrityError:
        raise Conflict("That link is taken; choose another.", code="slug_taken")
    return shop


def vendor_signup(
    *,
    username: str,
    password: str,
    email: str,
    shop_name: str,
    slug: str = "",
    currency: str = "INR",
    contact_phone: str = "",
) -> Shop:
    """Create a vendor account and its shop in one transaction: both or neither.

    Raises what ``user_signup`` and ``shop_create`` raise (weak password, username_taken, slug_taken, ...).
    """
    _clean_name(shop_name)
    _clean_currency(currency)
    if not _clean_email(email):
        raise ValidationFailed(
            "An e-mail address is required: new orders are sent there.", code="invalid_email"
        )
    if slug:
        _clean_slug(slug)
    with transaction.atomic():
        user = user_signup(username=username, password=password, email=email)
        return shop_create(
            owner=user,
            name=shop_name,
            slug=slug,
            currency=currency,
            contact_email=email,
            contact_phone=contact_phone,
        )


def shop_update(
    *,
    owner: User,
    name: str | None = None,
    slug: str | None = None,
    currency: str | None = None,
    contact_email: str | None = None,
    contact_phone: str | None = None,
    timezone: str | None = None,
) -> Shop:
    """Change the owner's shop. A new slug keeps the old one in the history (old link → 301).

    Locks the shop row. Raises NotFound ``no_shop``, ValidationFailed, Conflict ``slug_taken``. Invalidates the
    page under the old and the new slug after commit (a stale page could have been cached under either).
    """
    try:
        with transaction.atomic():
            shop = Shop.objects.select_for_update().filter(owner=owner).first()
            if shop is None:
                raise NotFound("You have no shop yet.", code="no_shop")
            old_slug = shop.slug
            if name is not None:
                shop.name = _clean_name(name)
            if currency is not None:
                shop.currency = _clean_currency(currency)
            if contact_email is not None:
                shop.contact_email = _clean_email(contact_email)
            if contact_phone is not None:
                shop.contact_phone = contact_phone.strip()[:30]
            if timezone is not None:
                shop.timezone = _clean_timezone(timezone)
            if slug is not None and slug.strip().lower() != old_slug:
                new_slug = _clean_slug(slug)
                if _slug_taken(new_slug, by_other_than=shop):
                    raise Conflict("That link is taken; choose another.", code="slug_taken")
                # Returning to one of our own former slugs: it stops being a redirect.
                ShopSlugHistory.objects.filter(shop=shop, slug=new_slug).delete()
                ShopSlugHistory.objects.create(shop=shop, slug=old_slug)
                shop.slug = new_slug
            shop.save()
    except IntegrityError:
        raise Conflict("That link is taken; choose another.", code="slug_taken")
    return shop
