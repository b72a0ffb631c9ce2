"""Running the real promtool on rule files and unit-test documents."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMTOOL = shutil.which("promtool")


def require_promtool() -> str:
    if PROMTOOL is None:
        pytest.skip(
            "promtool is not installed (apt-get install --no-install-recommends prometheus, or make system-deps)"
        )
    return PROMTOOL


def without_annotations(rule_file: Path, dest: Path) -> Path:
    """A copy of `rule_file` with the alerts' annotations removed, nothing else changed.

    promtool compares annotations exactly, and the descriptions embed the formatted $value; the firing
    logic (expr, for, labels) is untouched. test_annotations_render covers the annotations themselves.
    """
    document = yaml.safe_load(rule_file.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    dest.write_text(yaml.safe_dump(document, sort_keys=False))
    return dest


def promtool_test(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    """Write a `promtool test rules` document and run it; fail with promtool's output if it fails."""
    promtool = require_promtool()
    path = tmp_path / f"{name}.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1000))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool test rules {path} failed:\n{output}"
    return output
