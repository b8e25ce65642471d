"""The HTML forms' side of the shared input rules (``bazaar.core.schemas``): the same text rule, as a form field.

Every text field of every form is a ``TextField`` (single line unless ``multiline=True`` or a textarea), so a page
refuses exactly what the API refuses, with the same message, and nothing reaches a service.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from bazaar.core.schemas import strip_controls, text_problem


class TextValidator:
    """Refuses control characters (tab, CR, LF allowed when ``multiline``) and lone surrogates: ``invalid_text``."""

    def __init__(self, *, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: Any) -> None:
        problem = text_problem(str(value), multiline=self.multiline)
        if problem is not None:
            raise ValidationError(problem, code="invalid_text")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextValidator) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash(self.multiline)


class TextField(forms.CharField):
    """A CharField with the shared text rule; a textarea (or ``multiline=True``) may contain line breaks."""

    def __init__(self, *args: Any, multiline: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if multiline is None:
            multiline = isinstance(self.widget, forms.Textarea)
        self.validators.append(TextValidator(multiline=multiline))


def search_term(raw: object) -> str:
    """A search box's term from a query string: control characters removed (they can match nothing)."""
    return strip_controls(str(raw or ""))
