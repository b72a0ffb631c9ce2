"""README's "Use the lab on your own Django app" is the user's whole recipe: every step must be true as written."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import yaml

from monitoring.config import DJANGO_PROMETHEUS_DEFAULT_BUCKETS
from monitoring.pack_config import KEYS
from pack import cli

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
USERAPP = HERE / "userapp" / "shop"


def _recipe() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("### Use the lab on your own Django app", 1)[1].split("\n## ", 1)[0]


def _buckets(source: str) -> tuple[float, ...]:
    """The value of the PROMETHEUS_LATENCY_BUCKETS assignment in `source` (Python: a tuple of numbers and inf)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PROMETHEUS_LATENCY_BUCKETS":
            assert isinstance(node.value, ast.Tuple)
            return tuple(
                float("inf")
                if isinstance(item, ast.Call) and ast.literal_eval(item.args[0]) == "inf"
                else float(ast.literal_eval(item))
                for item in node.value.elts
            )
    raise AssertionError("no PROMETHEUS_LATENCY_BUCKETS assignment")


def _recipe_buckets() -> tuple[float, ...]:
    (snippet,) = re.findall(r"`(PROMETHEUS_LATENCY_BUCKETS = [^`]*)`", _recipe())
    return _buckets(snippet)


def test_the_buckets_are_django_prometheus_defaults_plus_the_threshold() -> None:
    example = yaml.safe_load((HERE / "example-pack.yaml").read_text())
    expected = tuple(sorted({*DJANGO_PROMETHEUS_DEFAULT_BUCKETS, example["latency_threshold_s"]}))
    assert _recipe_buckets() == expected
    # The test project follows the recipe to the letter.
    assert _buckets((USERAPP / "settings.py").read_text()) == expected


def test_the_settings_and_urls_of_step_1_are_what_the_test_project_uses() -> None:
    recipe = _recipe()
    settings = (USERAPP / "settings.py").read_text()
    for name in re.findall(r'`"(django_prometheus[\w.]*)"`', recipe):
        assert f'"{name}"' in settings, name
    assert 'path("", include("django_prometheus.urls"))' in recipe
    assert 'path("", include("django_prometheus.urls"))' in (USERAPP / "urls.py").read_text()


def test_the_config_of_step_2_is_the_example_the_tests_generate() -> None:
    block = re.search(r"```yaml\n(.*?)```", _recipe(), re.DOTALL)
    assert block
    config = yaml.safe_load(block.group(1))
    assert config == yaml.safe_load((HERE / "example-pack.yaml").read_text())
    assert set(config) <= set(KEYS)


def test_the_command_of_step_3_writes_every_path_step_4_names(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    recipe = _recipe()
    command = re.search(r"`\.venv/bin/python -m pack ([^`]*)`", recipe)
    assert command
    (tmp_path / "my-pack.yaml").write_text((HERE / "example-pack.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert cli.main(shlex.split(command.group(1))) == 0
    named = set(re.findall(r"`(my-pack/[^`\s]*)`", recipe))
    assert named
    for path in named:
        if "*" in path:
            assert list(tmp_path.glob(path)), path
        else:
            assert (tmp_path / path).exists(), path
    for flag in re.findall(r"`(--[a-z-]+)`", recipe):
        assert flag in cli._parser().format_help(), flag


def test_the_alerts_the_recipe_names_are_in_the_pack(tmp_path: Path) -> None:
    assert cli.main(["--config", str(HERE / "example-pack.yaml"), "--out", str(tmp_path)]) == 0
    rules = (tmp_path / "rules" / "slo-production.rules.yml").read_text()
    for alert in re.findall(r"`(SLOConfig\w+)`", _recipe()):
        assert f"alert: {alert}" in rules, alert
