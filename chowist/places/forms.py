"""Forms for the places pages and the JSON API's query parameters (one validation path for both)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_slug

from chowist.places.models import RATING_MAX, RATING_MIN, Place, Review

SEARCH_MAX_LENGTH = 100
CATEGORY_FILTER_MAX = 10
PARTY_SIZE_MAX = 100


class SlugListField(forms.Field):
    """Repeated `?category=a&category=b` parameters, each a slug."""

    widget = forms.SelectMultiple

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        return [str(item).strip() for item in value if str(item).strip()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        if len(value) > CATEGORY_FILTER_MAX:
            raise forms.ValidationError(f"at most {CATEGORY_FILTER_MAX} categories at once")
        for slug in value:
            if len(slug) > 100:
                raise forms.ValidationError("a category is at most 100 characters")
            validate_slug(slug)


class PlaceFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=SEARCH_MAX_LENGTH, label="Search")
    category = SlugListField(required=False, label="Category")
    party = forms.IntegerField(required=False, min_value=1, max_value=PARTY_SIZE_MAX, label="Party size")
    page = forms.IntegerField(required=False, min_value=1)

    def error_message(self) -> str:
        """All errors as one line, naming each parameter: what a 400 says."""
        return "; ".join(f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in self.errors.items())


class PlaceForm(forms.ModelForm):
    class Meta:
        model = Place
        fields = ["name", "description", "address", "city", "phone", "categories", "min_party_size", "max_party_size"]
        widgets = {"categories": forms.CheckboxSelectMultiple}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        low, high = cleaned.get("min_party_size"), cleaned.get("max_party_size")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError("The minimum party size cannot be larger than the maximum.")
        return cleaned


class ReviewForm(forms.Form):
    """A plain Form: the rating bound is checked here and by the database constraint, not by an extra query."""

    rating = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(RATING_MAX, RATING_MIN - 1, -1)], coerce=int, label="Rating"
    )
    comment = forms.CharField(
        required=False,
        max_length=Review._meta.get_field("comment").max_length,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
