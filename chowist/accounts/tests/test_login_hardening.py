"""The login forms under abuse: no redirect loop; brute force throttled per (username, IP) and, looser, per IP;
nobody can lock another person out from somewhere else."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse

from chowist.places.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_logged_in_user_asking_to_come_back_to_login_is_sent_on_not_looped(client):
    user = make_user()
    client.force_login(user)
    response = client.get(reverse("accounts:login") + "?next=/accounts/login/")
    assert response.status_code == 302
    assert response["Location"] == reverse(settings.LOGIN_REDIRECT_URL)


def test_logged_in_user_with_a_safe_next_still_goes_there(client):
    client.force_login(make_user())
    response = client.get(reverse("accounts:login") + "?next=/places/")
    assert (response.status_code, response["Location"]) == (302, "/places/")


def _login(client, url, username, password, ip):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url_name", ["accounts:login", "admin:login"])
def test_one_ip_spraying_usernames_is_throttled_by_the_looser_per_ip_cap(client, url_name):
    user = User.objects.create_superuser(username="victim", password=PASSWORD, email="v@example.com")
    url = reverse(url_name)
    cap = settings.LOGIN_FAILURE_LIMIT_IP
    statuses = [_login(client, url, f"guess{i}", "wrong", "203.0.113.7").status_code for i in range(cap + 5)]
    # A failed login re-renders the form (200); past the per-IP cap the IP is locked out, whatever the username.
    assert cap > settings.LOGIN_FAILURE_LIMIT
    assert statuses[: cap - 1] == [200] * (cap - 1)
    assert set(statuses[cap:]) == {429}
    locked = _login(client, url, user.username, PASSWORD, "203.0.113.7")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == settings.LOGIN_LOCKOUT_S
    assert b"Too many failed log-in attempts" in locked.content
    assert "_auth_user_id" not in client.session
    # Another address is not locked out by this one's guesses.
    assert _login(client, url, user.username, PASSWORD, "198.51.100.9").status_code == 302


@pytest.mark.parametrize("url_name", ["accounts:login", "admin:login"])
def test_guessing_one_username_from_one_ip_locks_that_pair_only(client, url_name):
    user = User.objects.create_superuser(username="target", password=PASSWORD, email="t@example.com")
    url = reverse(url_name)
    limit = settings.LOGIN_FAILURE_LIMIT
    statuses = [_login(client, url, user.username, "wrong", "203.0.113.8").status_code for _ in range(limit + 2)]
    assert statuses[: limit - 1] == [200] * (limit - 1) and set(statuses[limit:]) == {429}
    assert _login(client, url, user.username, PASSWORD, "203.0.113.8").status_code == 429
    # Before: 5 failures from any IP locked the username everywhere, the right password included.
    assert _login(client, url, user.username, PASSWORD, "198.51.100.9").status_code == 302


def test_guesses_from_many_ips_never_lock_the_owner_out(client):
    # Before: anyone could lock anyone out: 5 wrong passwords for a username, from anywhere, locked it for 15
    # minutes even for the right password from another IP.
    user = make_user(username="target")
    url = reverse("accounts:login")
    statuses = [_login(client, url, user.username, "wrong", f"203.0.113.{i}").status_code for i in range(1, 30)]
    assert set(statuses) == {200}
    assert _login(client, url, user.username, PASSWORD, "198.51.100.9").status_code == 302


def test_the_users_behind_one_ip_do_not_lock_each_other_out(client):
    # Before: 5 failures from one IP locked every user behind it (a NAT, an office).
    url = reverse("accounts:login")
    for i in range(settings.LOGIN_FAILURE_LIMIT + 2):
        _login(client, url, f"typo{i}", "wrong", "192.0.2.44")
    colleague = make_user(username="colleague")
    assert _login(client, url, colleague.username, PASSWORD, "192.0.2.44").status_code == 302


def test_failures_during_a_lockout_do_not_restart_it(client, settings):
    # Before: every failure during a lockout restarted the 15 minutes: an attacker could hold it for ever.
    from axes.models import AccessAttempt
    from django.utils import timezone

    user = make_user(username="held")
    url = reverse("accounts:login")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        _login(client, url, user.username, "wrong", "203.0.113.9")
    [attempt] = AccessAttempt.objects.filter(username=user.username)
    started = timezone.now() - timezone.timedelta(seconds=settings.LOGIN_LOCKOUT_S - 1)
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=started)
    assert _login(client, url, user.username, "wrong", "203.0.113.9").status_code == 429
    assert AccessAttempt.objects.get(pk=attempt.pk).attempt_time == started


def test_a_successful_login_resets_the_count(client):
    user = make_user()
    url = reverse("accounts:login")
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert _login(client, url, user.username, "wrong", "203.0.113.20").status_code == 200
    assert _login(client, url, user.username, PASSWORD, "203.0.113.20").status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert _login(client, url, user.username, "wrong", "203.0.113.20").status_code == 200


def test_behind_the_proxy_failures_count_against_the_address_nginx_saw(client, settings):
    settings.BEHIND_PROXY = True
    user = make_user(username="proxied")
    url = reverse("accounts:login")
    for i in range(settings.LOGIN_FAILURE_LIMIT_IP + 1):
        # The client forges a first entry; nginx appends the real peer, 203.0.113.50.
        client.post(
            url,
            {"username": f"guess{i}", "password": "wrong"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}, 203.0.113.50",
        )
    locked = client.post(url, {"username": user.username, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out.
    other = client.post(url, {"username": user.username, "password": PASSWORD}, HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert other.status_code == 302
