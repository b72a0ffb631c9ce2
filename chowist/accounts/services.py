from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chowist.accounts.models import Profile

PROFILE_FIELDS = ("bio", "address", "birth_date")


def profile_get_or_create(*, user: AbstractBaseUser) -> Profile:
    """The user's profile; created on first use for users that predate the post_save hook (e.g. bulk-loaded ones)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def profile_update(*, profile: Profile, data: dict[str, Any]) -> Profile:
    for field in PROFILE_FIELDS:
        if field in data:
            setattr(profile, field, data[field])
    profile.save()
    return profile
