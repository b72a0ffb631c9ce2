"""The read-replica router's rules that need no replica (the real one is in experiments/lab/tests/test_replica.py)."""

from __future__ import annotations

from django.http import HttpResponse

from chowist.core.db_routing import PRIMARY, PrimaryReplicaRouter, _request, _RequestRouting


def test_outside_a_request_everything_uses_the_primary() -> None:
    # The consumer and management commands: a task must never miss the row its request just wrote.
    router = PrimaryReplicaRouter()
    assert router.db_for_read(object) == PRIMARY
    assert router.db_for_write(object) == PRIMARY


def test_a_request_that_wrote_reads_from_the_primary() -> None:
    router = PrimaryReplicaRouter()
    state = _RequestRouting()
    token = _request.set(state)
    try:
        assert router.db_for_write(object) == PRIMARY
        assert state.wrote
        assert router.db_for_read(object) == PRIMARY
    finally:
        _request.reset(token)


def test_a_pinned_client_reads_from_the_primary() -> None:
    token = _request.set(_RequestRouting(pinned=True))
    try:
        assert PrimaryReplicaRouter().db_for_read(object) == PRIMARY
    finally:
        _request.reset(token)


def test_only_the_primary_is_migrated() -> None:
    router = PrimaryReplicaRouter()
    assert router.allow_migrate("default", "places")
    assert not router.allow_migrate("replica", "places")


def test_a_view_whose_writes_are_never_read_back_does_not_pin_its_client() -> None:
    # The interaction POST: an inbox row the consumer counts later. Pinning on it sent a browsing client's every
    # read to the primary for DB_READ_YOUR_WRITES_S, and a replica-backed lab served almost no reads.
    from django.test import RequestFactory

    from chowist.core.db_routing import ReadYourWritesMiddleware, read_your_writes_exempt
    from chowist.interactions import views

    middleware = ReadYourWritesMiddleware(lambda request: HttpResponse())
    for view, exempt in ((views.record, True), (views.popular, False)):
        request = RequestFactory().post("/")
        request._db_routing = state = _RequestRouting()
        middleware.process_view(request, view, (), {})
        assert state.exempt is exempt, view

    @read_your_writes_exempt
    def plain(request: object) -> HttpResponse:
        return HttpResponse()

    assert getattr(plain, "read_your_writes_exempt", False)
