from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from chowist.accounts.models import Profile


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For password resets; never shown to others.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class ProfileForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = ["bio", "address", "birth_date"]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"}), "bio": forms.Textarea(attrs={"rows": 4})}
