"""The desk's forms: what a clerk types or scans (shape only; the rules are the services')."""

from __future__ import annotations

from django import forms


class RentForm(forms.Form):
    customer = forms.CharField(
        max_length=254,
        label="Customer",
        help_text="Customer number or e-mail",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    barcode = forms.CharField(
        max_length=64,
        label="Copy barcode",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class ReturnForm(forms.Form):
    barcode = forms.CharField(
        max_length=64,
        label="Copy barcode",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
