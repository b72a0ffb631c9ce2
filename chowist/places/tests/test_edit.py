import pytest
from django.urls import reverse

from chowist.places.models import Place
from chowist.places.tests.factories import make_category, make_place, make_user

pytestmark = pytest.mark.django_db


def edit(place) -> str:
    return reverse("places:edit", kwargs={"pk": place.pk})


def form_data(**overrides) -> dict:
    data = {"name": "Renamed", "description": "", "address": "1 Main St", "city": "Oakland", "phone": ""}
    data.update({"min_party_size": "1", "max_party_size": "6"})
    data.update(overrides)
    return data


def test_anonymous_and_users_without_permission_get_403(client):
    place = make_place()
    assert client.get(edit(place)).status_code == 403
    client.force_login(make_user())
    response = client.post(edit(place), form_data())
    assert response.status_code == 403
    assert b"change place" in response.content
    assert Place.objects.get(pk=place.pk).name == place.name


def test_editor_can_edit_name_and_categories(client):
    place, category = make_place(name="Before"), make_category("Thai")
    client.force_login(make_user(can_edit=True))
    assert client.get(edit(place)).status_code == 200
    response = client.post(edit(place), form_data(categories=[category.pk]))
    assert response.status_code == 302
    place.refresh_from_db()
    assert place.name == "Renamed" and list(place.categories.all()) == [category]


def test_invalid_edit_is_a_400_with_the_form_errors(client):
    place = make_place(name="Before")
    client.force_login(make_user(can_edit=True))
    response = client.post(edit(place), form_data(name="", min_party_size="9", max_party_size="2"))
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert Place.objects.get(pk=place.pk).name == "Before"


def test_unknown_place_is_404_for_editors(client):
    client.force_login(make_user(can_edit=True))
    assert client.get("/places/424242/edit/").status_code == 404


def test_detail_shows_the_edit_link_only_to_editors(client):
    place = make_place()
    assert b"Edit this place" not in client.get(place.get_absolute_url()).content
    client.force_login(make_user(can_edit=True))
    assert b"Edit this place" in client.get(place.get_absolute_url()).content


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999", "9223372036854775808"])
def test_a_category_id_out_of_the_databases_range_is_a_form_error_not_a_500(client, value):
    # Before: `categories=99999999999999999999` reached the database as `pk IN (...)`: OverflowError, a 500.
    place, category = make_place(name="Before"), make_category("Thai")
    client.force_login(make_user(can_edit=True))
    response = client.post(edit(place), form_data(categories=[category.pk, value]))
    assert response.status_code == 400
    assert "is not one of the available choices" in response.content.decode()
    place.refresh_from_db()
    assert place.name == "Before" and list(place.categories.all()) == []


@pytest.mark.parametrize("field", ["name", "address", "city", "phone"])
@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\x00", "\u2028"])
def test_a_line_break_or_control_character_in_a_one_line_field_is_a_form_error(client, field, breaker):
    # Before: "Name\r\nBcc: x" was saved; every review-confirmation e-mail for the place then failed (its subject).
    place = make_place(name="Before")
    client.force_login(make_user(can_edit=True))
    response = client.post(edit(place), form_data(**{field: f"Evil{breaker}Bcc: victim@example.com"}))
    assert response.status_code == 400
    assert field in response.context["form"].errors  # NUL: Django's own "Null characters are not allowed."
    place.refresh_from_db()
    assert place.name == "Before"
