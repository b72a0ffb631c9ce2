"""Migrations are generated files: the committed ones must match the models."""

import pytest
from django.core.management import call_command

APPS = ["places", "accounts", "core", "marketing"]


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # --check exits non-zero (SystemExit) when a model change has no migration yet.
    call_command("makemigrations", *APPS, "--check", "--dry-run", verbosity=0)
