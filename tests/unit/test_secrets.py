"""Secrets only from the environment or from files other users cannot read."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from monitor.config import load_config
from monitor.errors import ConfigError

HOOK = "json://user:hunter2@127.0.0.1:9/hook/tok3n"


def _write(path, data, mode):
    path.write_text(yaml.safe_dump(data))
    path.chmod(mode)
    return path


def test_world_readable_secrets_file_is_refused_with_the_fix(tmp_path):
    s = _write(tmp_path / "secrets.yaml", {"notify": [HOOK]}, 0o644)
    with pytest.raises(ConfigError) as exc:
        load_config(env={"FILTERWATCH_SECRETS_FILE": str(s), "FILTERWATCH_CONFIG": ""})
    msg = str(exc.value)
    assert "world-readable" in msg and f"chmod 600 {s}" in msg and "hunter2" not in msg


def test_private_secrets_file_supplies_targets_key_and_server(tmp_path):
    s = _write(
        tmp_path / "secrets.yaml",
        {
            "notify": [{"url": HOOK, "tags": ["critical"]}],
            "url_hash_key": "k3y",
            "clickhouse_url": "https://writer:pw@ch.internal:8443",
        },
        0o600,
    )
    cfg_file = _write(tmp_path / "fw.yaml", {"store": {"database": "fw"}}, 0o644)
    cfg = load_config(cfg_file, env={"FILTERWATCH_SECRETS_FILE": str(s)})
    assert [t.url for t in cfg.notify] == [HOOK] and cfg.notify[0].tags == ("critical",)
    assert cfg.url_hash_key == b"k3y" and cfg.store.url == "https://writer:pw@ch.internal:8443"
    assert "hunter2" not in repr(cfg) and "k3y" not in repr(cfg)


def test_config_file_holding_secrets_must_be_private(tmp_path):
    data = {"notify": [HOOK]}
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(_write(tmp_path / "open.yaml", data, 0o644), env={})
    assert load_config(_write(tmp_path / "private.yaml", data, 0o600), env={}).notify
    # no secrets in it: any mode will do
    assert load_config(_write(tmp_path / "plain.yaml", {"store": {}}, 0o644), env={})
    server = {"store": {"url": "http://writer:pw@127.0.0.1:8123"}}
    with pytest.raises(ConfigError, match="world-readable"):
        load_config(_write(tmp_path / "server.yaml", server, 0o644), env={})


def test_secrets_file_with_unknown_key_names_the_known_ones(tmp_path):
    s = _write(tmp_path / "s.yaml", {"notfy": [HOOK]}, 0o600)
    with pytest.raises(ConfigError, match="unknown key 'notfy'; use notify"):
        load_config(env={"FILTERWATCH_SECRETS_FILE": str(s), "FILTERWATCH_CONFIG": ""})


def test_worker_refuses_to_start_on_a_world_readable_secrets_file(tmp_path):
    s = _write(tmp_path / "secrets.yaml", {"notify": [HOOK]}, 0o604)
    p = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "worker"],
        env={"FILTERWATCH_SECRETS_FILE": str(s), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "world-readable" in lines[0] and "hunter2" not in p.stderr
