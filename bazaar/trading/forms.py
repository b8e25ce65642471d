"""The trading pages' forms: shape only (the rules are the services')."""

from __future__ import annotations

from typing import Any

from django import forms

from bazaar.trading.page_selectors import SORTS
from bazaar.trading.services.offers import EXPIRY_DAYS, MESSAGE_MAX


class PokemonSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Name, species or id")
    level_min = forms.IntegerField(required=False, min_value=1, max_value=100, label="Level from")
    level_max = forms.IntegerField(required=False, min_value=1, max_value=100, label="to")
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()), label="Sort by")


def _pokemon_label(p: Any) -> str:
    return f"{p.nickname} · {p.species} · level {p.level} ({p.public_id})"


class OfferForm(forms.Form):
    """Pick pokemon of mine (``give``) and of theirs (``ask``); the choices are the two trainers' pokemon now."""

    give = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="You give", choices=[]
    )
    ask = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="You ask for", choices=[]
    )
    message = forms.CharField(
        required=False,
        max_length=MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Message (optional)",
    )
    expires_in_days = forms.IntegerField(
        min_value=EXPIRY_DAYS[0],
        max_value=EXPIRY_DAYS[1],
        initial=7,
        label="Open for (days)",
        help_text=f"{EXPIRY_DAYS[0]} to {EXPIRY_DAYS[1]} days; then it expires unanswered.",
    )

    def __init__(self, *args: Any, mine: list[Any], theirs: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        give = self.fields["give"]
        ask = self.fields["ask"]
        assert isinstance(give, forms.MultipleChoiceField)
        assert isinstance(ask, forms.MultipleChoiceField)
        give.choices = [(p.public_id, _pokemon_label(p)) for p in mine]
        ask.choices = [(p.public_id, _pokemon_label(p)) for p in theirs]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("give") and not data.get("ask"):
            raise forms.ValidationError("Pick at least one pokemon, on either side.")
        return data


def _ids(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


class ExchangeForm(forms.Form):
    """Staff: a direct exchange between two trainers; pokemon ids separated by spaces or commas."""

    trainer_a = forms.CharField(max_length=64, label="Trainer A (id)")
    a_gives = forms.CharField(required=False, max_length=2000, label="A gives (pokemon ids)")
    trainer_b = forms.CharField(max_length=64, label="Trainer B (id)")
    b_gives = forms.CharField(required=False, max_length=2000, label="B gives (pokemon ids)")

    def clean_a_gives(self) -> list[str]:
        return _ids(self.cleaned_data.get("a_gives") or "")

    def clean_b_gives(self) -> list[str]:
        return _ids(self.cleaned_data.get("b_gives") or "")


class ImportUploadForm(forms.Form):
    KINDS = [("", "detect from the header"), ("trainers", "trainers"), ("pokemon", "pokemon")]

    file = forms.FileField(
        label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"})
    )
    kind = forms.ChoiceField(required=False, choices=KINDS, label="Kind")
