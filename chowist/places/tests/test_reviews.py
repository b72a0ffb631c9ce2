import threading

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from chowist.places.models import Place, Review
from chowist.places.services import InvalidRating, review_delete, review_submit
from chowist.places.tests.factories import make_place, make_user


def review_url(place) -> str:
    return reverse("places:review", kwargs={"pk": place.pk})


def assert_denormalised_counts_match(place) -> None:
    place.refresh_from_db()
    actual = Review.objects.filter(place=place).aggregate(n=Count("id"), total=Sum("rating"))
    assert (place.review_count, place.rating_sum) == (actual["n"], actual["total"] or 0)


def confirmations_queued(review_id: int) -> int:
    """Confirmation tasks for this review waiting in the real huey queue."""
    return sum(1 for t in HUEY.pending() if t.name == "send_review_confirmation" and t.args == (review_id,))


@pytest.mark.django_db
def test_first_submission_creates_and_second_updates(client, django_capture_on_commit_callbacks):
    place, user = make_place(), make_user()
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(review_url(place), {"rating": "5", "comment": "great"})
    assert response.status_code == 302 and response["Location"] == place.get_absolute_url()
    review = Review.objects.get(place=place, author=user)
    # The queue outlives test databases (ids repeat across runs), so count what this test adds.
    before = confirmations_queued(review.pk)
    for callback in callbacks:
        callback()
    assert confirmations_queued(review.pk) == before + 1  # queued by the commit, not before it
    with django_capture_on_commit_callbacks(execute=True):
        client.post(review_url(place), {"rating": "2", "comment": "changed my mind"})
    assert confirmations_queued(review.pk) == before + 1  # an update sends no second confirmation
    review.refresh_from_db()
    assert (review.rating, review.comment) == (2, "changed my mind")
    place.refresh_from_db()
    assert (place.review_count, place.rating_sum, place.average_rating) == (1, 2, 2.0)


@pytest.mark.django_db
def test_counts_stay_consistent_over_many_writes():
    place = make_place()
    users = [make_user() for _ in range(4)]
    for rating, user in zip([5, 4, 1, 3], users, strict=True):
        review_submit(place=place, author=user, rating=rating)
    review_submit(place=place, author=users[0], rating=2)
    assert_denormalised_counts_match(place)
    assert place.average_rating == 2.5


@pytest.mark.django_db
def test_deleting_reviews_in_the_admin_keeps_the_average_right(admin_client):
    place = make_place()
    users = [make_user() for _ in range(3)]
    reviews = [review_submit(place=place, author=u, rating=r).review for u, r in zip(users, [5, 1, 3], strict=True)]
    review_delete(review=reviews[0])
    assert_denormalised_counts_match(place)
    response = admin_client.post(
        reverse("admin:places_review_changelist"),
        {"action": "delete_selected", "_selected_action": [reviews[1].pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert_denormalised_counts_match(place)
    assert place.average_rating == 3.0


@pytest.mark.django_db
@pytest.mark.parametrize("rating", ["0", "6", "-1", "abc", "", "4.5"])
def test_out_of_range_rating_is_a_400_and_writes_nothing(client, rating):
    place = make_place()
    client.force_login(make_user())
    response = client.post(review_url(place), {"rating": rating})
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert not Review.objects.exists()


@pytest.mark.django_db
def test_service_refuses_out_of_range_rating():
    with pytest.raises(InvalidRating):
        review_submit(place=make_place(), author=make_user(), rating=6)


@pytest.mark.django_db
def test_anonymous_is_sent_to_log_in(client):
    place = make_place()
    response = client.post(review_url(place), {"rating": "5"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_get_is_a_405_and_unknown_place_a_404(client):
    client.force_login(make_user())
    assert client.get(review_url(make_place())).status_code == 405
    assert client.post("/places/987654/review/", {"rating": "5"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submissions_by_one_user_never_fail():
    """Regression: two racing submissions by one user hit the unique constraint and gave a 500."""
    place, user = make_place(), make_user()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    results = []

    def submit(rating: int) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(review_submit(place=place, author=user, rating=rating))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(rating,)) for rating in (3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.created for r in results) == [False, True]
    assert Review.objects.filter(place=place, author=user).count() == 1
    final = Review.objects.get(place=place, author=user).rating
    place = Place.objects.get(pk=place.pk)
    assert (place.review_count, place.rating_sum) == (1, final)


@pytest.mark.django_db(transaction=True)
def test_losing_insert_is_retried_as_an_update(monkeypatch):
    """The IntegrityError path itself: the other writer's row appears between our read and our INSERT."""
    from chowist.places import services

    place, user = make_place(), make_user()
    real_write = services._review_write
    calls = []

    def racing_write(**kwargs):
        if not calls:
            # Another request commits its review just before ours inserts.
            real_write(place=place, author=user, rating=1, comment="other tab")
            calls.append(1)
            return _insert_without_looking(**kwargs)
        return real_write(**kwargs)

    def _insert_without_looking(*, place, author, rating, comment):
        Review.objects.create(place=place, author=author, rating=rating, comment=comment)

    monkeypatch.setattr(services, "_review_write", racing_write)
    result = review_submit(place=place, author=user, rating=4)
    assert result.created is False
    assert Review.objects.get(place=place, author=user).rating == 4
    assert_denormalised_counts_match(place)
