"""The accounts' background tasks. Thin: they call the code that does the work; services fire them with
workers.jobs.enqueue_on_commit."""

from __future__ import annotations

from chowist.accounts.notifications import password_reset_send
from workers.jobs import job


@job()
def send_password_reset(email: str, domain: str, use_https: bool) -> int:
    """E-mail a reset link to the accounts at `email`, if any: the request that asked did not look."""
    return password_reset_send(email=email, domain=domain, use_https=use_https)
