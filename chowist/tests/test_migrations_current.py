"""Migrations are generated files: the committed ones must match the models of every app."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # No app labels: makemigrations then checks every installed app, so a new app cannot be left out.
    # --check exits non-zero (SystemExit) when a model change has no migration yet.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
