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


def _drain_queue() -> list[str]:
    names = []
    while (task := HUEY.dequeue()) is not None:
        names.append(task.name)
        HUEY.execute(task)
    return names


def test_lost_thumbnail_and_confirmation_are_requeued_by_the_sweeper_once(settings, tmp_path):
    """A consumer SIGKILLed after dequeuing loses the task: the sweep finds the work missing and queues it again."""
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path / "media"
    author = make_user()
    author.email = "author@example.com"
    author.save()
    place = make_place()
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 40)).save(buffer, format="PNG")
    place.photo.save("lost.png", ContentFile(buffer.getvalue()), save=True)
    review = Review.objects.create(place=make_place(), author=author, rating=4)
    # Their tasks were dequeued and lost: nothing in the queue, and the work is older than the grace period.
    old = timezone.now() - timezone.timedelta(minutes=15)
    type(place).objects.filter(pk=place.pk).update(updated_at=old)
    Review.objects.filter(pk=review.pk).update(created_at=old)
    # Demo and confirmed reviews are not swept.
    confirmed = Review.objects.create(place=make_place(), author=author, rating=3, confirmation_sent_at=old)
    Review.objects.filter(pk=confirmed.pk).update(created_at=old)
    mail.outbox = []

    assert HUEY.execute(tasks.requeue_lost_jobs.s()) == 2
    assert sorted(_drain_queue()) == ["make_place_thumbnail", "send_review_confirmation"]
    place.refresh_from_db()
    assert place.thumbnail
    assert [m.to for m in mail.outbox] == [["author@example.com"]]
    review.refresh_from_db()
    assert review.confirmation_sent_at is not None
    # Done once: the next sweep finds nothing, and a duplicate task does not mail twice.
    assert HUEY.execute(tasks.requeue_lost_jobs.s()) == 0
    HUEY.execute(tasks.send_review_confirmation.s(review.pk))
    assert len(mail.outbox) == 1


def test_the_sweeper_leaves_recent_work_to_its_own_task_and_retries():
    author = make_user()
    author.email = "author@example.com"
    author.save()
    Review.objects.create(place=make_place(), author=author, rating=4)
    assert HUEY.execute(tasks.requeue_lost_jobs.s()) == 0


def test_a_place_name_saved_with_cr_lf_still_gets_a_one_line_subject():
    # Before: a name holding CR LF made every confirmation fail with BadHeaderError (retried 5 times, then swept).
    author = make_user()
    author.email = "author@example.com"
    author.save()
    place = make_place(name="Evil\r\nBcc: victim@example.com")  # saved before names were validated
    review = Review.objects.create(place=place, author=author, rating=5)
    mail.outbox = []
    tasks.send_review_confirmation(review.pk)
    HUEY.execute(HUEY.dequeue())
    [message] = mail.outbox
    assert message.subject == "Your review of Evil Bcc: victim@example.com is live"
    assert message.recipients() == ["author@example.com"]
    review.refresh_from_db()
    assert review.confirmation_sent_at is not None


def test_a_message_that_can_never_be_sent_is_given_up_not_retried_or_swept():
    # Before: a permanent BadHeaderError was retried 5 times and the lost-jobs sweep queued it again, forever.
    author = make_user()
    author.email = "author@example.com\r\nBcc: victim@example.com"  # written past the forms (an import, the shell)
    author.save()
    review = Review.objects.create(place=make_place(), author=author, rating=5)
    retries = _value("chowist_jobs_total", task="send_review_confirmation", outcome="retry")
    mail.outbox = []
    tasks.send_review_confirmation(review.pk)
    HUEY.execute(HUEY.dequeue())
    assert mail.outbox == []
    assert _value("chowist_jobs_total", task="send_review_confirmation", outcome="retry") == retries
    assert HUEY.scheduled() == [] and HUEY.pending_count() == 0
    review.refresh_from_db()
    assert review.confirmation_sent_at is None and review.confirmation_failed_at is not None
    Review.objects.filter(pk=review.pk).update(created_at=timezone.now() - timezone.timedelta(minutes=15))
    assert HUEY.execute(tasks.requeue_lost_jobs.s()) == 0
