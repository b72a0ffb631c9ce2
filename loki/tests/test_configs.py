"""Offline checks of the Loki and Alloy configs (no Loki or Alloy binary on these machines)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from loki import queries

LOKI_DIR = Path(__file__).resolve().parents[1]
ROOT = LOKI_DIR.parent
ALLOY = LOKI_DIR / "alloy" / "config.alloy"
LOKI_YAML = LOKI_DIR / "loki.yaml"


def _alloy_source() -> str:
    """The Alloy config with // comments removed (outside strings)."""
    out = []
    for line in ALLOY.read_text().splitlines():
        in_string = False
        for i, char in enumerate(line):
            if char == '"' and (i == 0 or line[i - 1] != "\\"):
                in_string = not in_string
            if not in_string and line[i : i + 2] == "//":
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _block(source: str, header: str) -> str:
    """The body of the first block whose header starts with `header` (brace-matched)."""
    start = source.index(header)
    open_at = source.index("{", start)
    depth = 0
    for i in range(open_at, len(source)):
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if depth == 0:
            return source[open_at + 1 : i]
    raise AssertionError(f"unbalanced block {header!r}")


def test_loki_config_parses_and_accepts_structured_metadata() -> None:
    config = yaml.safe_load(LOKI_YAML.read_text())
    assert config["auth_enabled"] is False
    assert config["server"]["http_listen_port"] == 3100
    (schema,) = config["schema_config"]["configs"]
    # The shipper's structured_metadata stage needs schema v13 (tsdb) and the per-tenant switch.
    assert schema["schema"] == "v13" and schema["store"] == "tsdb"
    assert config["limits_config"]["allow_structured_metadata"] is True
    prefix = config["common"]["path_prefix"]
    for path in config["common"]["storage"]["filesystem"].values():
        assert path.startswith(prefix + "/"), "all Loki data lives under the one mounted volume"
    assert config["compactor"]["working_directory"].startswith(prefix + "/")


def test_alloy_config_is_balanced() -> None:
    source = _alloy_source()
    assert source.count("{") == source.count("}")
    assert source.count("[") == source.count("]")
    assert source.count("(") == source.count(")")
    assert all(line.count('"') % 2 == 0 for line in source.splitlines())


def test_alloy_wires_file_source_to_process_to_write() -> None:
    source = _alloy_source()
    assert "local.file_match.chowist.targets" in _block(source, 'loki.source.file "chowist"')
    assert "loki.process.chowist.receiver" in _block(source, 'loki.source.file "chowist"')
    assert "loki.write.loki.receiver" in _block(source, 'loki.process "chowist"')
    assert "/loki/api/v1/push" in _block(source, 'loki.write "loki"')


def test_alloy_tails_the_app_and_worker_logs_of_the_native_lab() -> None:
    targets = _block(_alloy_source(), 'local.file_match "chowist"')
    found = dict(re.findall(r'"/(\w+)\.log",\s*"service"\s*=\s*"(\w+)"', targets))
    assert found == {"app": "app", "worker": "worker"}
    # The default directory is where the native lab writes (observability/METRICS.md, Logs).
    assert 'coalesce(sys.env("CHOWIST_LOG_DIR"), "var/lab")' in targets
    metrics_md = (ROOT / "observability" / "METRICS.md").read_text()
    assert "var/lab/app.log" in metrics_md and "var/lab/worker.log" in metrics_md


def test_alloy_stream_labels_are_only_service_and_level() -> None:
    source = _alloy_source()
    target_labels = set(re.findall(r'"(\w+)"\s*=', _block(source, 'local.file_match "chowist"'))) - {"__path__"}
    stage_labels = set(re.findall(r"(\w+)\s*=", _block(_block(source, "stage.labels"), "values")))
    kept = re.findall(r'"(\w+)"', _block(source, "stage.label_keep"))
    assert target_labels | stage_labels <= set(queries.STREAM_LABELS)
    assert sorted(kept) == sorted(queries.STREAM_LABELS)


def test_trace_id_is_structured_metadata_not_a_label() -> None:
    source = _alloy_source()
    assert "trace_id" in _block(source, "stage.structured_metadata")
    assert "trace_id" not in _block(source, "stage.labels")
    assert "trace_id" in _block(source, "stage.json")
