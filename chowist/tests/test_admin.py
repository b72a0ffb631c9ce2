import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from chowist.accounts.models import Profile
from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.models import Category, Place, Review

pytestmark = pytest.mark.django_db
MODELS = [Category, Place, Review, Profile, Interaction, PlaceDailyCounter]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_search_and_filters(model):
    model_admin = admin.site._registry[model]
    assert model_admin.search_fields, f"{model.__name__} admin has no search"
    assert model_admin.list_filter, f"{model.__name__} admin has no filters"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_searches_and_filters(admin_client, model):
    from django.core.management import call_command

    call_command("seed_demo", places=5, users=3, reviews=6, interactions=20, seed=1)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "demo ünï\x00code"}).status_code == 200
    first = model.objects.first()
    change = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[first.pk])
    assert admin_client.get(change).status_code == 200


def test_staff_without_permissions_sees_no_models(client):
    user = User.objects.create_user("staff", password="x-Long-pa55word", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:places_place_changelist")).status_code == 403
