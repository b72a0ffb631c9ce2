"""The read-replica router's rules that need no replica (the real one is in experiments/lab/tests/test_replica.py)."""

from __future__ import annotations

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
