from __future__ import annotations

from django import forms

from bazaar.core.forms import TextField


class SignupForm(forms.Form):
    username = TextField(max_length=150)
    email = forms.EmailField(required=False)
    password = TextField(widget=forms.PasswordInput, max_length=256)
    password_again = TextField(widget=forms.PasswordInput, max_length=256, label="Password (again)")

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class LoginForm(forms.Form):
    username = TextField(max_length=150)
    password = TextField(widget=forms.PasswordInput, max_length=256)


class TokenForm(forms.Form):
    name = TextField(max_length=100, initial="default")
