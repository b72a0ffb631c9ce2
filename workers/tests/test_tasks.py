"""Tasks executed in this process against the real huey SQLite storage: envelope, lag, retries, periodic task."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.utils import timezone

from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.models import Review
from chowist.places.tests.factories import make_place, make_user
from conftest import free_port
from workers import metrics, tasks
from workers.envelope import ENVELOPE_KWARG
from workers.queue import queue_stats_get

pytestmark = pytest.mark.django_db(transaction=True)


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _run_next(huey, timestamp=None):
    task = huey.dequeue()
    assert task is not None
    huey.execute(task, timestamp)
    return task


def test_enqueue_stamps_the_envelope(clean_queue):
    before = time.time()
    tasks.drain_interactions()
    [task] = clean_queue.pending()
    envelope = task.kwargs[ENVELOPE_KWARG]
    assert before <= envelope["enqueued_at"] <= time.time()
    assert isinstance(envelope["carrier"], dict)


def test_lag_is_recorded_positive_and_grows_while_nobody_consumes(clean_queue):
    count = _value("chowist_job_lag_seconds_count", task="drain_interactions")
    total = _value("chowist_job_lag_seconds_sum", task="drain_interactions")
    tasks.drain_interactions()
    first = queue_stats_get()
    time.sleep(0.3)
    second = queue_stats_get()
    assert first.depth == second.depth == 1
    assert 0 <= first.oldest_pending_age_s < second.oldest_pending_age_s
    assert second.oldest_pending_age_s >= 0.3
    _run_next(clean_queue)
    assert _value("chowist_job_lag_seconds_count", task="drain_interactions") == count + 1
    assert _value("chowist_job_lag_seconds_sum", task="drain_interactions") - total >= 0.3
    assert _value("chowist_jobs_total", task="drain_interactions", outcome="success") >= 1


def test_drain_task_counts_the_inbox(clean_queue):
    place = make_place()
    Interaction.objects.bulk_create(Interaction(place=place, kind="like", created_at=timezone.now()) for _ in range(3))
    recorded = _value("chowist_interactions_recorded_total", kind="like")
    tasks.drain_interactions()
    _run_next(clean_queue)
    assert PlaceDailyCounter.objects.get(place=place).likes == 3
    assert _value("chowist_interactions_recorded_total", kind="like") == recorded + 3


def test_a_failing_email_is_retried_with_backoff_then_sent(clean_queue, settings):
    author = make_user()
    author.email = "author@example.com"
    author.save()
    review = Review.objects.create(place=make_place(), author=author, rating=5)
    # Nothing listens on this port: the SMTP connection is refused, as when the mail relay is down.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    retries = _value("chowist_jobs_total", task="send_review_confirmation", outcome="retry")

    tasks.send_review_confirmation(review.pk)
    _run_next(clean_queue)

    assert _value("chowist_jobs_total", task="send_review_confirmation", outcome="retry") == retries + 1
    assert clean_queue.pending_count() == 0
    [retry] = clean_queue.scheduled()
    assert retry.retries == tasks.EMAIL_RETRIES - 1
    assert retry.retry_delay == tasks.EMAIL_RETRY_DELAY_S * tasks.EMAIL_RETRY_BACKOFF
    assert retry.eta > timezone.now().replace(tzinfo=None)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    clean_queue.storage.flush_schedule()
    clean_queue.execute(retry, retry.eta)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["author@example.com"]
    assert _value("chowist_jobs_total", task="send_review_confirmation", outcome="success") >= 1


def test_periodic_task_drains_and_warms_the_popular_cache(clean_queue, settings):
    settings.POPULAR_CACHE = True
    place = make_place()
    Interaction.objects.create(place=place, kind="view", created_at=timezone.now())
    [periodic] = [
        t for t in clean_queue.read_periodic(timezone.now().replace(tzinfo=None)) if t.name == "refresh_popular"
    ]
    clean_queue.enqueue(periodic)
    _run_next(clean_queue)
    assert PlaceDailyCounter.objects.get(place=place).views == 1
    from chowist.interactions.selectors import popular_items_get

    result = popular_items_get(limit=5, window_days=settings.POPULAR_DEFAULT_WINDOW_DAYS)
    assert result["cached"] is True
    assert [item["place_id"] for item in result["items"]] == [place.pk]
