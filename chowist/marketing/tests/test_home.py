import pytest
from django.urls import reverse

from chowist.places.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_home_has_a_hero_and_a_sign_up_call_to_action(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("marketing:home"))
    assert response.status_code == 200
    assert b'class="hero"' in response.content
    assert reverse("accounts:signup").encode() in response.content
    assert b"Sign up free" in response.content


def test_members_are_pointed_to_the_places_instead(client):
    client.force_login(make_user())
    response = client.get(reverse("marketing:home"))
    assert b"Sign up free" not in response.content
    assert b"Browse places" in response.content


def test_home_answers_post_with_405(client):
    assert client.post(reverse("marketing:home")).status_code == 405
