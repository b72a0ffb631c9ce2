import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from chowist.accounts.models import Profile
from chowist.places.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db
STRONG = "Tasty-Noodles-2026"


def test_signup_creates_a_user_with_a_profile_and_logs_in(client):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "newbie", "email": "newbie@example.com", "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert Profile.objects.filter(user=user).exists()
    assert client.get(reverse("accounts:profile")).status_code == 200


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", b"too short"), ("password123", b"too common"), ("83749201375", b"entirely numeric")],
)
def test_signup_enforces_password_validators(client, password, message):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "weak", "email": "weak@example.com", "password1": password, "password2": password},
    )
    assert response.status_code == 400
    assert message in response.content
    assert not User.objects.filter(username="weak").exists()


def test_signup_with_a_taken_username_is_a_400(client):
    make_user(username="taken")
    response = client.post(
        reverse("accounts:signup"),
        {"username": "taken", "email": "t@example.com", "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 400


def test_log_in_and_out(client):
    make_user(username="alice")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 200
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 302


def test_wrong_password_shows_the_form_again(client):
    make_user(username="bob")
    response = client.post(reverse("accounts:login"), {"username": "bob", "password": "nope"})
    assert response.status_code == 200
    assert b"errorlist" in response.content


def test_password_change(client):
    user = make_user()
    client.force_login(user)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": STRONG, "new_password2": STRONG},
    )
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password_change_done")
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert client.get(reverse("accounts:password_change_done")).status_code == 200


@pytest.mark.django_db(transaction=True)  # the task (run here) closes its connection, as huey's db_task does
def test_password_reset_by_email_link(client, django_capture_on_commit_callbacks):
    user = make_user()
    user.email = "reset@example.com"
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:password_reset"), {"email": "reset@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password_reset_done")
    # The e-mail is the queued task's work (chowist/accounts/tasks.py).
    HUEY.execute(HUEY.dequeue())
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": STRONG, "new_password2": STRONG})
    assert done["Location"] == reverse("accounts:password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert client.get(reverse("accounts:password_reset_complete")).status_code == 200


def test_password_reset_bad_token_says_so(client):
    response = client.get(reverse("accounts:password_reset_confirm", kwargs={"uidb64": "zz", "token": "bad"}))
    assert response.status_code == 200
    assert b"invalid or has already been used" in response.content


def test_profile_is_created_on_first_visit_for_users_without_one(client):
    user = make_user()
    Profile.objects.filter(user=user).delete()  # as for bulk-loaded users, which skip post_save
    client.force_login(user)
    assert client.get(reverse("accounts:profile")).status_code == 200
    assert Profile.objects.filter(user=user).exists()


def test_profile_edit(client):
    user = make_user()
    client.force_login(user)
    response = client.post(
        reverse("accounts:profile_edit"), {"bio": "I like ramen", "address": "1 Main St", "birth_date": "1990-05-17"}
    )
    assert response.status_code == 302
    profile = Profile.objects.get(user=user)
    assert (profile.bio, profile.address, str(profile.birth_date)) == ("I like ramen", "1 Main St", "1990-05-17")
    assert b"I like ramen" in client.get(reverse("accounts:profile")).content


@pytest.mark.parametrize("birth_date", ["yesterday", "1990-13-45", "\x00"])
def test_profile_edit_bad_input_is_a_400(client, birth_date):
    client.force_login(make_user())
    response = client.post(reverse("accounts:profile_edit"), {"bio": "x", "birth_date": birth_date})
    assert response.status_code == 400
    assert b"errorlist" in response.content


def test_profile_pages_need_a_login(client):
    for name in ("accounts:profile", "accounts:profile_edit"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_profile_rejects_wrong_methods(client):
    client.force_login(make_user())
    assert client.delete(reverse("accounts:profile")).status_code == 405


@pytest.mark.parametrize(
    ("method", "name"),
    [("get", "accounts:logout"), ("delete", "accounts:login"), ("put", "accounts:password_reset")],
)
def test_wrong_methods_on_auth_views_are_405_pages_that_say_what_is_allowed(client, method, name):
    response = getattr(client, method)(reverse(name))
    assert response.status_code == 405
    assert b"is not allowed here; use" in response.content
