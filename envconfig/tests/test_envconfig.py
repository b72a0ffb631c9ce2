"""The one environment parser: unset or blank means the default, bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from envconfig import EnvError, env_bool, env_choice, env_float, env_int, env_list, env_path, env_str


@pytest.mark.parametrize("environ", [{}, {"X": ""}, {"X": "  "}])
def test_unset_or_blank_is_the_default(environ: dict[str, str]) -> None:
    assert env_str("X", "d", environ=environ) == "d"
    assert env_bool("X", True, environ=environ) is True
    assert env_int("X", 7, environ=environ) == 7
    assert env_float("X", 0.5, environ=environ) == 0.5
    assert env_list("X", ["a"], environ=environ) == ["a"]
    assert env_choice("X", "b", ("a", "b"), environ=environ) == "b"
    assert env_path("X", Path("/d"), environ=environ) == Path("/d")


def test_values_are_parsed() -> None:
    environ = {"S": " kept ", "B": "Off", "I": "12", "F": "0.25", "L": "a, b,,c", "C": "Services"}
    assert env_str("S", "", environ=environ) == " kept "
    assert env_bool("B", True, environ=environ) is False
    assert all(env_bool("B", False, environ={"B": raw}) for raw in ("1", "true", "YES", "on"))
    assert env_int("I", 0, environ=environ) == 12
    assert env_float("F", 0.0, environ=environ) == 0.25
    assert env_list("L", [], environ=environ) == ["a", "b", "c"]
    assert env_choice("C", "embedded", ("embedded", "services"), environ=environ) == "services"


def test_paths_are_absolute_relative_to_base_or_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert env_path("P", Path("/d"), environ={"P": "var/x"}) == tmp_path / "var" / "x"
    assert env_path("P", Path("/d"), environ={"P": "var/x"}, base=Path("/srv")) == Path("/srv/var/x")
    assert env_path("P", Path("/d"), environ={"P": "~/x"}) == Path.home() / "x"


def test_os_environ_is_read_when_no_mapping_is_given(monkeypatch) -> None:
    monkeypatch.setenv("ENVCONFIG_TEST_PORT", "8123")
    assert env_int("ENVCONFIG_TEST_PORT", 1) == 8123


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda: env_bool("DEBUG", False, environ={"DEBUG": "maybe"}), "DEBUG='maybe' is not a boolean"),
        (lambda: env_int("APP_PORT", 1, environ={"APP_PORT": "eighty"}), "APP_PORT='eighty' is not a number"),
        (lambda: env_float("T", 1.0, environ={"T": "1,5"}), "T='1,5' is not a number"),
        (lambda: env_choice("MODE", "a", ("a", "b"), environ={"MODE": "c"}), "MODE='c' must be one of a, b"),
    ],
)
def test_bad_values_raise_naming_the_variable(read, message: str) -> None:
    with pytest.raises(EnvError, match=message):
        read()
    assert issubclass(EnvError, ValueError)
