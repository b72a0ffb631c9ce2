"""The places' tasks executed in this process against the real huey storage."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from chowist.places import tasks
from chowist.places.models import Review
from chowist.places.tests.factories import make_place, make_user
from conftest import free_port
from workers import metrics

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_queue():
    HUEY.storage.flush_all()
    yield
    HUEY.storage.flush_all()


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_failing_email_is_retried_with_backoff_then_sent(settings):
    author = make_user()
    author.email = "author@example.com"
    author.save()
    review = Review.objects.create(place=make_place(), author=author, rating=5)
    # Nothing listens on this port: the SMTP connection is refused, as when the mail relay is down.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    retries = _value("chowist_jobs_total", task="send_review_confirmation", outcome="retry")

    tasks.send_review_confirmation(review.pk)
    HUEY.execute(HUEY.dequeue())

    assert _value("chowist_jobs_total", task="send_review_confirmation", outcome="retry") == retries + 1
    assert HUEY.pending_count() == 0
    [retry] = HUEY.scheduled()
    assert retry.retries == tasks.EMAIL_RETRIES - 1
    assert retry.retry_delay == tasks.EMAIL_RETRY_DELAY_S * tasks.EMAIL_RETRY_BACKOFF
    assert retry.eta > timezone.now().replace(tzinfo=None)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    HUEY.storage.flush_schedule()
    HUEY.execute(retry, retry.eta)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["author@example.com"]
    assert _value("chowist_jobs_total", task="send_review_confirmation", outcome="success") >= 1
