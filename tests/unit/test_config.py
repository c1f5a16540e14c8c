import pytest

from monitor.config import load_config
from monitor.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "fw.yaml"
    p.write_text(text)
    p.chmod(0o600)  # a config with notification URLs holds secrets (monitor/secrets.py)
    return p


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg.store.backend == "chdb" and cfg.source == "defaults"


def test_unknown_key_suggests_fix(tmp_path):
    p = write(tmp_path, "store:\n  pth: /x\n")
    with pytest.raises(ConfigError, match=r"unknown key 'store.pth' \(did you mean 'path'\?\)"):
        load_config(p, env={})


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="unknown section 'stor'"):
        load_config(write(tmp_path, "stor: {}\n"), env={})


def test_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match=r"'detect\.window_s' must be a number"):
        load_config(write(tmp_path, "detect:\n  window_s: fast\n"), env={})


def test_bad_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"line \d"):
        load_config(write(tmp_path, "store:\n  path: [unclosed\n"), env={})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", env={})


def test_notify_tags_and_env(tmp_path):
    p = write(tmp_path, "notify:\n  - url: json://localhost/x\n    tags: [critical]\n")
    cfg = load_config(p, env={"FILTERWATCH_NOTIFY": "json://a/b, mailto://u:p@h"})
    assert next(t.tags for t in cfg.notify) == ("critical",)
    assert len(cfg.notify) == 3
    assert "u:p" not in repr(cfg)  # secrets never in reprs


def test_bad_severity_tag(tmp_path):
    p = write(tmp_path, "notify:\n  - url: json://x\n    tags: [urgent]\n")
    with pytest.raises(ConfigError, match="severities are"):
        load_config(p, env={})


def test_env_overrides_store(tmp_path):
    cfg = load_config(
        write(tmp_path, "{}\n"),
        env={"FILTERWATCH_CLICKHOUSE_URL": "http://ch:8123", "FILTERWATCH_DATABASE": "fw2"},
    )
    assert cfg.store.backend == "http" and cfg.store.database == "fw2"
    with pytest.raises(ConfigError, match="valid ClickHouse identifier"):
        load_config(write(tmp_path, "{}\n"), env={"FILTERWATCH_DATABASE": "a-b; DROP"})


def test_alert_rules_routes_and_their_errors(tmp_path):
    p = write(
        tmp_path,
        "alerts:\n  rules:\n    under-blocking: {keep_firing_for_s: 300}\n"
        "  routes:\n    warning: [chat, digest]\n  group_by: [direction]\n"
        "notify:\n  - url: json://x\n    tags: [digest]\n    format: text\n",
    )
    cfg = load_config(p, env={})
    assert cfg.alerts.rule("under-blocking").keep_firing_for_s == 300
    assert cfg.alerts.rule("under-blocking").for_s == 0  # default kept
    assert cfg.alerts.rule("drift").for_s == cfg.alerts.drift_hold_s
    assert cfg.alerts.route_tags("warning") == ("chat", "digest")
    assert cfg.notify[0].body_format == "text"
    for bad, msg in (
        ("alerts:\n  rules:\n    overblocking: {for_s: 1}\n", "unknown alert type"),
        ("alerts:\n  rules:\n    drift: {for: 1}\n", "unknown key 'for'"),
        ("alerts:\n  rules:\n    drift: {for_s: -1}\n", "seconds >= 0"),
        ("alerts:\n  group_by: [colour]\n", "alerts.group_by"),
        ("alerts:\n  routes:\n    urgent: [x]\n", "severities are"),
    ):
        with pytest.raises(ConfigError, match=msg):
            load_config(write(tmp_path, bad), env={})
