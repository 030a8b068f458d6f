"""The optional [limits], [libreoffice] and [admin] sections of config.toml."""

from __future__ import annotations

import pytest

from ingest.errors import ConfigError
from service.config import load_settings
from tests.fixtures.service import config_text


def write(tmp_path, extra: str):
    path = tmp_path / "config.toml"
    base = config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                       smtp_port=1025, database_url="sqlite:///" + str(tmp_path / "z.sqlite3"))
    path.write_text(extra + "\n" + base, encoding="utf-8")
    return path


def test_limits_default_to_25_megabytes(tmp_path):
    settings = load_settings(write(tmp_path, ""))
    assert settings.limits.max_message_bytes == 25 * 1024 * 1024


def test_limits_read_in_megabytes(tmp_path):
    settings = load_settings(write(tmp_path, "[limits]\nmax_message_mb = 10\nzip_max_members = 5\n"))
    assert settings.limits.max_message_bytes == 10 * 1024 * 1024
    assert settings.limits.zip_max_members == 5


def test_limits_out_of_range_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[limits]\nmax_message_mb = 0\n"))
    assert "max_message_mb" in str(caught.value)


def test_libreoffice_path_resolved_from_config(tmp_path):
    settings = load_settings(write(tmp_path, '[libreoffice]\npath = "bin/soffice"\ntimeout = 30\n'))
    assert settings.libreoffice.path == str(tmp_path / "bin" / "soffice")
    assert settings.libreoffice.timeout == 30


def test_admin_emails_lower_cased(tmp_path):
    settings = load_settings(write(tmp_path, '[admin]\nemails = ["Admin@Example.test"]\n'))
    assert settings.admin_emails == ("admin@example.test",)


def test_admin_email_invalid_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[admin]\nemails = ["贾老师"]\n'))
    assert "贾老师" in str(caught.value)


def test_smtp_login_defaults_on(tmp_path):
    assert load_settings(write(tmp_path, "")).smtp.login is True


def test_smtp_login_must_be_boolean(tmp_path):
    path = write(tmp_path, "")
    path.write_text(path.read_text(encoding="utf-8").replace('from_name = "霍城县科协"', 'from_name = "霍城县科协"\nlogin = "no"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "login" in str(caught.value)
