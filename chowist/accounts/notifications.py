"""The e-mails about accounts (sent by chowist.accounts.tasks)."""

from __future__ import annotations

from django.contrib.auth.forms import PasswordResetForm

RESET_EMAIL_TEMPLATE = "registration/password_reset_email.txt"
RESET_SUBJECT_TEMPLATE = "registration/password_reset_subject.txt"


def password_reset_send(*, email: str, domain: str, use_https: bool) -> int:
    """Mail a reset link to every active account with a usable password at `email`; how many were mailed.

    The link's token is made here, in the worker, and exists nowhere but in the e-mail: not in the request, the
    queue, a log line or a span. Django's form finds the accounts and sends; it logs (and does not raise) a failed
    send, so a lost e-mail is a new request away, not a retry loop.
    """
    form = PasswordResetForm(data={"email": email})
    if not form.is_valid():
        return 0
    users = list(form.get_users(form.cleaned_data["email"]))
    if users:
        form.save(
            domain_override=domain,
            use_https=use_https,
            email_template_name=RESET_EMAIL_TEMPLATE,
            subject_template_name=RESET_SUBJECT_TEMPLATE,
        )
    return len(users)
