"""Production configuration, checked the way an operator would: `manage.py` in a child process."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    child = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}}
    child.update({"VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=child, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_is_clean_in_production(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="chowist.example.com",
        EMAIL_URL="smtp://mailer:secret@smtp.example.com:587",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = manage("check", tmp_path=tmp_path, DJANGO_ENV="production", ALLOWED_HOSTS="chowist.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("email_url", ["", "console://", "locmem://"])
def test_production_refuses_an_e_mail_backend_that_prints_or_drops_reset_links(tmp_path, email_url):
    result = manage(
        "check",
        tmp_path=tmp_path,
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="chowist.example.com",
        EMAIL_URL=email_url,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_URL must be smtp:// or smtps://" in result.stderr
