"""Declaring and firing tasks: after commit only, robustly, and readable under the name they were queued with."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from workers.jobs import enqueue_on_commit, job


@job(moved_from="workers.tests.old_home")
def jobs_probe(n: int) -> int:
    return n


def _probes(huey) -> list[tuple]:
    return [task.args for task in huey.pending() if task.name == "jobs_probe"]


@pytest.mark.django_db(transaction=True)
def test_enqueue_waits_for_the_commit_and_never_happens_on_rollback(clean_queue):
    with transaction.atomic():
        enqueue_on_commit(jobs_probe, 1)
        assert _probes(clean_queue) == []
    assert _probes(clean_queue) == [(1,)]
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(jobs_probe, 2)
        raise RuntimeError("the write failed")
    assert _probes(clean_queue) == [(1,)]


@pytest.mark.django_db(transaction=True)
def test_a_failing_enqueue_is_logged_not_raised_unless_asked(caplog):
    def queue_down(*args: object) -> None:
        raise ConnectionError("queue unreachable")

    with caplog.at_level(logging.WARNING, logger="workers.jobs"), transaction.atomic():
        enqueue_on_commit(queue_down, recovered_by="the periodic drain")
        enqueue_on_commit(queue_down)
    assert [(r.levelname, "periodic drain" in r.getMessage()) for r in caplog.records] == [
        ("WARNING", True),
        ("ERROR", False),
    ]
    with pytest.raises(ConnectionError), transaction.atomic():
        enqueue_on_commit(queue_down, robust=False)


def test_a_message_queued_under_the_tasks_old_module_still_runs(clean_queue):
    message = clean_queue._registry.create_message(jobs_probe.s(7))
    assert message.name == "workers.tests.test_jobs.jobs_probe"
    clean_queue.storage.enqueue(
        clean_queue.serializer.serialize(message._replace(name="workers.tests.old_home.jobs_probe"))
    )
    task = clean_queue.dequeue()
    assert task.name == "jobs_probe"
    assert task.args == (7,)
    assert clean_queue.execute(task) == 7


def test_every_task_that_left_workers_tasks_reads_its_old_messages(clean_queue):
    from chowist.interactions import tasks as interactions_tasks
    from chowist.places import tasks as places_tasks

    moved = [
        interactions_tasks.drain_interactions.s(),
        interactions_tasks.refresh_popular.s(),
        places_tasks.send_review_confirmation.s(1),
        places_tasks.make_place_thumbnail.s(1),
    ]
    for task in moved:
        message = clean_queue._registry.create_message(task)
        old = message._replace(name=f"workers.tasks.{task.name}")
        assert type(clean_queue.deserialize_task(clean_queue.serializer.serialize(old))) is type(task)
