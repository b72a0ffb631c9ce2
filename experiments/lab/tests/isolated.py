"""A lab configuration that touches nothing shared: free ports, LAB_DIR and VAR_DIR under `base`, embedded by
default, so a test's lab runs beside a developer's."""

from __future__ import annotations

from pathlib import Path

from conftest import free_port
from experiments.lab import LabConfig


def isolated_config(base: Path, **overrides: object) -> LabConfig:
    ports = {name: free_port() for name in LabConfig.port_fields()}
    values = {
        "lab_dir": base / "lab",
        "var_dir": base / "var",
        "profile": "embedded",
        "window_set": "lab",
        "database_url": "",
        "redis_url": "",
        "pgbouncer": False,
        # The direct path unless a test asks for the front door (test_nginx, the e2e experiment): most lab tests
        # are about the app and its consumer, and need not start nginx and mtail.
        "proxy": "none",
        **ports,
    }
    values.update(overrides)
    return LabConfig.from_env(**values)
