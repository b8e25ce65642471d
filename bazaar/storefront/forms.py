"""Storefront forms: shape only. Business rules (price ≤ MRP, unique names, slugs) live in the services."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.template.defaultfilters import filesizeformat

from bazaar.core.forms import TextField
from bazaar.storefront import conf
from bazaar.storefront.models import OrderStatus, PaymentStatus
from bazaar.storefront.services.shops import CURRENCIES, DEFAULT_TIMEZONE, timezones

CURRENCY_CHOICES = [(c, c) for c in CURRENCIES]


class VendorSignupForm(forms.Form):
    username = TextField(max_length=150)
    email = forms.EmailField(help_text="New orders are e-mailed here.")
    password = TextField(widget=forms.PasswordInput, max_length=256)
    password_again = TextField(widget=forms.PasswordInput, max_length=256, label="Password (again)")
    shop_name = TextField(max_length=120)
    slug = TextField(
        max_length=60,
        required=False,
        label="Store link",
        help_text="Your store's address ends in /s/your-link/ (lowercase letters, digits, dashes); leave it empty "
        "to make it from the shop name.",
    )
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="INR")
    contact_phone = TextField(max_length=30, required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class ShopForm(forms.Form):
    name = TextField(max_length=120, label="Shop name")
    slug = TextField(
        max_length=60,
        required=False,
        label="Store link",
        help_text="Your store's address ends in /s/your-link/; if you change it, the old link keeps redirecting.",
    )
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="INR")
    contact_email = forms.EmailField(required=False)
    contact_phone = TextField(max_length=30, required=False)
    timezone = forms.ChoiceField(
        choices=lambda: [(z, z.replace("_", " ")) for z in sorted(timezones())],
        initial=DEFAULT_TIMEZONE,
        required=False,
        label="Time zone",
        help_text="Order times on your pages and the customer's order page are shown in it.",
    )


class ProductForm(forms.Form):
    name = TextField(max_length=120)
    description = TextField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)
    category = TextField(
        max_length=60,
        required=False,
        help_text="Your own grouping, e.g. “Tea” or “Spices”: customers can filter the store by it.",
        widget=forms.TextInput(attrs={"list": "categories"}),
    )
    mrp = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0), label="MRP")
    price = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0), label="Selling price")
    stock = forms.IntegerField(min_value=0, max_value=10_000_000, initial=0)
    is_available = forms.BooleanField(required=False, initial=True, label="Available (can be ordered)")
    is_listed = forms.BooleanField(required=False, initial=True, label="Listed (shown on the store page)")
    image = forms.ImageField(required=False, label="Photo")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        limit = filesizeformat(conf.max_image_bytes())
        self.fields["image"].help_text = f"JPEG, PNG, WebP or GIF, at most {limit}. Shown up to 480 px wide."
        self.fields["image"].widget.attrs["accept"] = "image/jpeg,image/png,image/webp,image/gif"


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=OrderStatus.choices)


class PaymentForm(forms.Form):
    payment_status = forms.ChoiceField(choices=PaymentStatus.choices)
