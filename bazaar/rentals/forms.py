"""The desk's forms: what a clerk types or scans (shape only; the rules are the services')."""

from __future__ import annotations

from django import forms

from bazaar.core.forms import TextField


class RentForm(forms.Form):
    customer = TextField(
        max_length=254,
        label="Customer",
        help_text="Customer number or e-mail",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    barcode = TextField(
        max_length=64,
        label="Copy barcode",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class ReturnForm(forms.Form):
    barcode = TextField(
        max_length=64,
        label="Copy barcode",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
