"""The desk's and the patron's forms: what a clerk types or scans (shape only; the rules are the services')."""

from __future__ import annotations

from django import forms

from bazaar.core.forms import TextField
from bazaar.rentals.models import PaymentMethod

#: The largest id a form accepts (a bigger number is a typo, and would not fit the database's integer).
MAX_ID = 2**62


def _text(max_length: int, label: str, **attrs: str) -> forms.CharField:
    return TextField(
        max_length=max_length, label=label, widget=forms.TextInput(attrs={"autocomplete": "off", **attrs})
    )


class RentForm(forms.Form):
    customer = TextField(
        max_length=254,
        label="Customer",
        help_text="Customer number or e-mail",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    barcode = _text(64, "Copy barcode")


class ReturnForm(forms.Form):
    barcode = _text(64, "Copy barcode")


class ScanForm(forms.Form):
    """One scan at checkout: a keyboard-wedge barcode scanner types the barcode and presses Enter."""

    barcode = _text(64, "Scan or type a barcode", autofocus="autofocus", inputmode="text")


class PatronForm(forms.Form):
    name = TextField(max_length=200, label="Name")
    email = TextField(max_length=254, required=False, label="E-mail")
    phone = TextField(max_length=40, required=False, label="Phone")


class PaymentForm(forms.Form):
    amount = TextField(max_length=20, label="Amount", widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    method = forms.ChoiceField(choices=PaymentMethod.choices, label="Method", initial=PaymentMethod.CASH)
    note = TextField(max_length=200, required=False, label="Note")


class HoldForm(forms.Form):
    title = forms.IntegerField(
        min_value=1, max_value=MAX_ID, label="Title number", help_text="The number in the title's link"
    )


class RenewForm(forms.Form):
    """Renew one loan (``rental``) or every loan of the patron (``all``)."""

    rental = forms.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    all = forms.BooleanField(required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if not data.get("all") and not data.get("rental"):
            raise forms.ValidationError("Choose a loan to renew, or renew all.")
        return data


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=[("active", "Active"), ("blocked", "Blocked")])


class HistoryForm(forms.Form):
    keep = forms.BooleanField(required=False)
