"""Config loading: parsing config.toml, Chinese errors that name the key, secrets kept hidden.

Only files are read here: the host names in the configs are never contacted.
"""

import dataclasses
import datetime as dt
import logging
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import make_url

from ingest.errors import ConfigError
from service.config import Secret, Security, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
PASSWORD = "Zx9-authcode-7Q"
ENV = {"ZHOUBAO_IMAP_PASSWORD": PASSWORD}

BASE = """\
[mailbox]
host = "imap.example.test"
port = 993
security = "ssl"
username = "county@example.test"
password_env = "ZHOUBAO_IMAP_PASSWORD"

[smtp]
host = "smtp.example.test"
from = "county@example.test"
from_name = "霍城县科协"

[campaign]
name = "2023-2024年“科技之冬”活动"
first_deadline = "2023-12-08 18:00"
last_deadline = "2024-03-15 18:00"

[[units]]
name = "水定镇"
emails = ["shuiding_kx@163.com"]

[[units]]
name = "芦草沟镇"
aliases = ["芦草沟镇人民政府"]
emails = ["lucaogou_kx@126.com"]
"""


def write(folder: Path, text: str, name: str = "config.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, text: str, environ=None):
    return load_settings(write(folder, text), ENV if environ is None else environ)


def error(folder: Path, text: str, environ=None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(folder, text, environ)
    return str(caught.value)


def replace(old: str, new: str) -> str:
    if old not in BASE:
        raise KeyError(old)
    return BASE.replace(old, new, 1)


# --- the shipped example ----------------------------------------------------------------------


@pytest.fixture
def example(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "config.toml")
    return load_settings(tmp_path / "config.toml", ENV)


def test_example_loads_nine_units(example):
    assert len(example.units) == 9


def test_example_first_deadline(example):
    assert example.campaign.first_deadline == dt.datetime(2023, 12, 8, 18, 0,
                                                          tzinfo=ZoneInfo("Asia/Shanghai"))


def test_example_last_week(example):
    assert example.campaign.calendar().last_week == 15


def test_example_imap_host(example):
    assert (example.mailbox.host, example.mailbox.port) == ("imap.163.com", 993)


def test_example_smtp_host(example):
    assert (example.smtp.host, example.smtp.port) == ("smtp.163.com", 465)


def test_example_alias(example):
    assert example.unit_directory().match_name("芦草沟镇人民政府").name == "芦草沟镇"


def test_example_county_addresses(example):
    assert example.county_addresses == frozenset({"hckexie-example@163.com"})


def test_example_password_from_env(example):
    assert example.mailbox.password.reveal() == PASSWORD


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_folder(tmp_path):
    assert load(tmp_path, BASE).mailbox.folder == "INBOX"


def test_defaults_processed_folder(tmp_path):
    assert load(tmp_path, BASE).mailbox.processed_folder == "已处理"


def test_defaults_poll_interval(tmp_path):
    assert load(tmp_path, BASE).mailbox.poll_interval == 300


def test_defaults_timezone(tmp_path):
    assert load(tmp_path, BASE).campaign.timezone == ZoneInfo("Asia/Shanghai")


def test_defaults_smtp_port_for_ssl(tmp_path):
    assert load(tmp_path, BASE).smtp.port == 465


def test_defaults_imap_port_for_starttls(tmp_path):
    text = replace('port = 993\nsecurity = "ssl"', 'security = "starttls"')
    assert load(tmp_path, text).mailbox.port == 143


def test_security_is_enum(tmp_path):
    assert load(tmp_path, BASE).mailbox.security is Security.SSL


def test_smtp_login_defaults_to_mailbox(tmp_path):
    assert load(tmp_path, BASE).smtp.username == "county@example.test"


def test_smtp_password_defaults_to_mailbox(tmp_path):
    assert load(tmp_path, BASE).smtp.password.reveal() == PASSWORD


def test_smtp_from_defaults_to_username(tmp_path):
    text = replace('from = "county@example.test"\n', "")
    assert load(tmp_path, text).smtp.from_address == "county@example.test"


def test_data_dir_next_to_config(tmp_path, monkeypatch):
    # GIVEN a config in a sub-folder and a different working directory
    folder = tmp_path / "etc"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)

    # WHEN it is loaded without [service]
    settings = load(folder, BASE)

    # THEN the data folder sits next to the config file
    assert settings.data_dir == folder.resolve() / "data"


def test_data_dir_relative_to_config(tmp_path):
    settings = load(tmp_path, '[service]\ndata_dir = "var/zhoubao"\n' + BASE)
    assert settings.data_dir == tmp_path.resolve() / "var" / "zhoubao"


def test_database_default_in_data_dir(tmp_path):
    url = load(tmp_path, BASE).database.url
    assert url == f"sqlite:///{tmp_path.resolve()}/data/zhoubao.sqlite3"


def test_database_relative_sqlite_resolved(tmp_path):
    settings = load(tmp_path, BASE + '\n[database]\nurl = "sqlite:///db/x.sqlite3"\n')
    assert settings.database.url == f"sqlite:///{tmp_path.resolve()}/db/x.sqlite3"


def test_database_postgresql_accepted(tmp_path):
    text = BASE + '\n[database]\nurl = "postgresql+psycopg://zhoubao:pw@127.0.0.1:5432/zhoubao"\n'
    assert load(tmp_path, text).database.url.startswith("postgresql+psycopg://zhoubao:pw@")


def test_database_password_not_in_repr(tmp_path):
    text = BASE + '\n[database]\nurl = "postgresql://zhoubao:dbsecret42@127.0.0.1/zhoubao"\n'
    assert "dbsecret42" not in repr(load(tmp_path, text))


def test_database_safe_url_hides_password(tmp_path):
    text = BASE + '\n[database]\nurl = "postgresql://zhoubao:dbsecret42@127.0.0.1/zhoubao"\n'
    assert "dbsecret42" not in load(tmp_path, text).database.safe_url


def test_database_mysql_rejected(tmp_path):
    message = error(tmp_path, BASE + '\n[database]\nurl = "mysql://u:dbsecret42@h/db"\n')
    assert "[database] url" in message


def test_database_rejected_url_hides_password(tmp_path):
    message = error(tmp_path, BASE + '\n[database]\nurl = "mysql://u:dbsecret42@h/db"\n')
    assert "dbsecret42" not in message


POSTGRES_NO_PASSWORD = '\n[database]\nurl = "postgresql+psycopg://zhoubao@db.example.test:5432/zhoubao"\n'
# Characters that must be escaped in a URL's password.
DB_PASSWORD = "p@ss:w/rd%41#"


def test_database_password_env_joins_url(tmp_path):
    text = BASE + POSTGRES_NO_PASSWORD + 'password_env = "ZHOUBAO_DB_PASSWORD"\n'
    settings = load(tmp_path, text, {**ENV, "ZHOUBAO_DB_PASSWORD": DB_PASSWORD})
    url = make_url(settings.database.url)
    assert url.password == DB_PASSWORD
    assert (url.username, url.host, url.database) == ("zhoubao", "db.example.test", "zhoubao")


def test_database_password_file_joins_url(tmp_path):
    (tmp_path / "db-password.txt").write_text(DB_PASSWORD + "\n", encoding="utf-8")
    text = BASE + POSTGRES_NO_PASSWORD + 'password_file = "db-password.txt"\n'
    assert make_url(load(tmp_path, text).database.url).password == DB_PASSWORD


def test_database_password_env_hidden(tmp_path):
    text = BASE + POSTGRES_NO_PASSWORD + 'password_env = "ZHOUBAO_DB_PASSWORD"\n'
    settings = load(tmp_path, text, {**ENV, "ZHOUBAO_DB_PASSWORD": DB_PASSWORD})
    assert DB_PASSWORD not in settings.database.safe_url
    assert DB_PASSWORD not in repr(settings)


def test_database_password_env_unset(tmp_path):
    text = BASE + POSTGRES_NO_PASSWORD + 'password_env = "ZHOUBAO_DB_PASSWORD"\n'
    message = error(tmp_path, text)
    assert "环境变量 ZHOUBAO_DB_PASSWORD 未设置或为空" in message
    assert "数据库用户的密码" in message


def test_database_password_env_needed_without_secrets(tmp_path):
    # Listing submissions needs no mail password, but it cannot open the database without this one.
    text = BASE + POSTGRES_NO_PASSWORD + 'password_env = "ZHOUBAO_DB_PASSWORD"\n'
    with pytest.raises(ConfigError, match="ZHOUBAO_DB_PASSWORD"):
        load_settings(write(tmp_path, text), {}, require_secrets=False)


def test_database_password_twice_rejected(tmp_path):
    text = BASE + '\n[database]\nurl = "postgresql://zhoubao:dbsecret42@127.0.0.1/zhoubao"\n' \
        'password_env = "ZHOUBAO_DB_PASSWORD"\n'
    message = error(tmp_path, text, {**ENV, "ZHOUBAO_DB_PASSWORD": DB_PASSWORD})
    assert "url 已含有密码" in message
    assert "dbsecret42" not in message


def test_database_password_env_and_file_rejected(tmp_path):
    text = BASE + POSTGRES_NO_PASSWORD + 'password_env = "ZHOUBAO_DB_PASSWORD"\npassword_file = "pw.txt"\n'
    assert "只能填写其中一项" in error(tmp_path, text, {**ENV, "ZHOUBAO_DB_PASSWORD": DB_PASSWORD})


def test_database_password_for_sqlite_rejected(tmp_path):
    text = BASE + '\n[database]\nurl = "sqlite:///x.sqlite3"\npassword_env = "ZHOUBAO_DB_PASSWORD"\n'
    assert "只用于 PostgreSQL" in error(tmp_path, text, {**ENV, "ZHOUBAO_DB_PASSWORD": DB_PASSWORD})


def test_database_plain_password_key_rejected(tmp_path):
    text = BASE + POSTGRES_NO_PASSWORD + 'password = "dbsecret42"\n'
    assert "[database] 的键 password 无法识别" in error(tmp_path, text)


def test_settings_frozen(tmp_path):
    settings = load(tmp_path, BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.mailbox.host = "other.example.test"


# --- secrets ----------------------------------------------------------------------------------


def test_secret_repr_hidden():
    assert repr(Secret(PASSWORD)) == "Secret('**********')"


def test_secret_str_hidden():
    assert str(Secret(PASSWORD)) == "**********"


def test_secret_format_hidden():
    assert f"{Secret(PASSWORD)}" == "**********"


def test_secret_reveal():
    assert Secret(PASSWORD).reveal() == PASSWORD


def test_settings_repr_hides_password(tmp_path):
    assert PASSWORD not in repr(load(tmp_path, BASE))


def test_settings_str_hides_password(tmp_path):
    assert PASSWORD not in str(load(tmp_path, BASE))


def test_settings_log_hides_password(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = load(tmp_path, BASE.replace('password_env = "ZHOUBAO_IMAP_PASSWORD"',
                                           f'password = "{PASSWORD}"'))
    logging.getLogger("test").info("settings %s", settings)
    assert PASSWORD not in caplog.text


def test_password_inline(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"', f'password = "{PASSWORD}"')
    assert load(tmp_path, text, {}).mailbox.password.reveal() == PASSWORD


def test_password_file(tmp_path):
    (tmp_path / "authcode.txt").write_text(PASSWORD + "\n", encoding="utf-8")
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"', 'password_file = "authcode.txt"')
    assert load(tmp_path, text, {}).mailbox.password.reveal() == PASSWORD


def test_password_file_missing(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"', 'password_file = "authcode.txt"')
    assert "password_file" in error(tmp_path, text, {})


def test_password_env_unset(tmp_path):
    assert "ZHOUBAO_IMAP_PASSWORD" in error(tmp_path, BASE, {})


def test_password_two_ways(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"',
                   f'password_env = "ZHOUBAO_IMAP_PASSWORD"\npassword = "{PASSWORD}"')
    assert "只能填写其中一项" in error(tmp_path, text)


def test_password_two_ways_hides_value(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"',
                   f'password_env = "ZHOUBAO_IMAP_PASSWORD"\npassword = "{PASSWORD}"')
    assert PASSWORD not in error(tmp_path, text)


def test_password_missing(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"\n', "")
    assert "缺少 [mailbox] password_env" in error(tmp_path, text)


def test_password_wrong_type_hides_value(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"', "password = 20231208")
    assert "20231208" not in error(tmp_path, text)


# --- key errors -------------------------------------------------------------------------------


def test_security_invalid_message(tmp_path):
    text = replace('security = "ssl"', 'security = "tls"')
    assert error(tmp_path, text) == (
        "配置文件 config.toml 中 [mailbox] security 的值 \"tls\" 无效：应为 ssl、starttls 或 none 之一。"
    )


def test_unknown_key_named(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"', f'pasword = "{PASSWORD}"')
    assert "pasword" in error(tmp_path, text)


def test_unknown_key_suggestion(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"',
                   f'password_env = "ZHOUBAO_IMAP_PASSWORD"\npasword = "{PASSWORD}"')
    assert "您是否想写 password？" in error(tmp_path, text)


def test_unknown_key_hides_value(tmp_path):
    text = replace('password_env = "ZHOUBAO_IMAP_PASSWORD"',
                   f'password_env = "ZHOUBAO_IMAP_PASSWORD"\npasword = "{PASSWORD}"')
    assert PASSWORD not in error(tmp_path, text)


def test_unknown_section_named(tmp_path):
    assert "mailbx" in error(tmp_path, BASE + '\n[mailbx]\nhost = "x"\n')


def test_unknown_key_in_unit(tmp_path):
    message = error(tmp_path, BASE + 'email = ["x@example.test"]\n')
    assert "[[units]] 第 2 项（芦草沟镇） 的键 email" in message


def test_missing_host(tmp_path):
    text = replace('host = "imap.example.test"\n', "")
    assert "缺少 [mailbox] host" in error(tmp_path, text)


def test_port_as_text(tmp_path):
    text = replace("port = 993", 'port = "993"')
    assert "[mailbox] port 的值 \"993\" 无效" in error(tmp_path, text)


def test_port_out_of_range(tmp_path):
    text = replace("port = 993", "port = 99300")
    assert "[mailbox] port 的值 99300 无效" in error(tmp_path, text)


def test_port_boolean_rejected(tmp_path):
    text = replace("port = 993", "port = true")
    assert "[mailbox] port 的值 true 无效" in error(tmp_path, text)


def test_poll_interval_too_short(tmp_path):
    text = replace("port = 993", "port = 993\npoll_interval = 5")
    assert "[mailbox] poll_interval" in error(tmp_path, text)


def test_reconnect_defaults(tmp_path):
    policy = load(tmp_path, BASE).mailbox.retry_policy()
    assert (policy.reconnect.initial, policy.reconnect.maximum) == (5, 300)
    assert policy.login_retry == 1800
    assert policy.poll_interval == 300


def test_reconnect_keys_read(tmp_path):
    text = replace("port = 993", "port = 993\nreconnect_delay = 2\nreconnect_max_delay = 60\n"
                                 "login_retry_delay = 600")
    policy = load(tmp_path, text).mailbox.retry_policy()
    assert (policy.reconnect.initial, policy.reconnect.maximum) == (2, 60)
    assert policy.login_retry == 600


def test_reconnect_max_below_initial(tmp_path):
    text = replace("port = 993", "port = 993\nreconnect_delay = 60\nreconnect_max_delay = 30")
    message = error(tmp_path, text)
    assert "[mailbox] reconnect_max_delay 的值 30 无效" in message
    assert "不能小于 reconnect_delay（60 秒）" in message


def test_login_retry_delay_too_short(tmp_path):
    text = replace("port = 993", "port = 993\nlogin_retry_delay = 5")
    assert "[mailbox] login_retry_delay 的值 5 无效：应为 60 到 86400 之间的整数（单位：秒）" in error(tmp_path, text)


def test_idle_defaults_on(tmp_path):
    mailbox = load(tmp_path, BASE).mailbox
    assert mailbox.idle is True
    assert mailbox.idle_renew == 1500


def test_idle_must_be_boolean(tmp_path):
    text = replace("port = 993", 'port = 993\nidle = "yes"')
    assert '[mailbox] idle 的值 "yes" 无效' in error(tmp_path, text)


def test_idle_renew_within_29_minutes(tmp_path):
    text = replace("port = 993", "port = 993\nidle_renew = 1800")
    assert "[mailbox] idle_renew 的值 1800 无效：应为 60 到 1740 之间的整数" in error(tmp_path, text)


def test_host_with_port_rejected(tmp_path):
    text = replace('host = "imap.example.test"', 'host = "imap.example.test:993"')
    assert "[mailbox] host" in error(tmp_path, text)


def test_host_with_scheme_rejected(tmp_path):
    text = replace('host = "imap.example.test"', 'host = "imaps://imap.example.test"')
    assert "[mailbox] host" in error(tmp_path, text)


def test_security_none_remote_rejected(tmp_path):
    text = replace('security = "ssl"', 'security = "none"')
    assert "[mailbox] security 的值 \"none\" 无效" in error(tmp_path, text)


def test_security_none_remote_names_host(tmp_path):
    text = replace('security = "ssl"', 'security = "none"')
    assert "\"imap.example.test\"" in error(tmp_path, text)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_security_none_loopback_allowed(tmp_path, host):
    text = replace('host = "imap.example.test"\nport = 993\nsecurity = "ssl"',
                   f'host = "{host}"\nport = 1143\nsecurity = "none"')
    assert load(tmp_path, text).mailbox.security is Security.NONE


def test_smtp_security_none_remote_rejected(tmp_path):
    text = replace('host = "smtp.example.test"', 'host = "smtp.example.test"\nsecurity = "none"')
    assert "[smtp] security" in error(tmp_path, text)


def test_smtp_from_with_name_rejected(tmp_path):
    text = replace('from = "county@example.test"', 'from = "科协 <county@example.test>"')
    assert "[smtp] from" in error(tmp_path, text)


def test_section_as_value_rejected(tmp_path):
    assert "[campaign]" in error(tmp_path, 'campaign = "科技之冬"\n' + BASE.split("[campaign]")[0])


# --- file errors ------------------------------------------------------------------------------


def test_file_missing(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "config.toml", ENV)
    assert "找不到配置文件" in str(caught.value)


def test_file_gbk_rejected(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(BASE.encode("gbk"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, ENV)
    assert "UTF-8" in str(caught.value)


def test_file_with_bom_accepted(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(BASE.encode("utf-8-sig"))
    assert load_settings(path, ENV).mailbox.host == "imap.example.test"


def test_toml_syntax_names_line(tmp_path):
    text = replace('host = "imap.example.test"', "host = “imap.example.test”")
    assert "第 2 行" in error(tmp_path, text)


def test_toml_datetime_without_seconds_hint(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', "first_deadline = 2023-12-08T18:00")
    assert "2023-12-08T18:00:00" in error(tmp_path, text)


def test_error_is_config_error_subclass(tmp_path):
    with pytest.raises(ConfigError):
        load(tmp_path, "")


# --- campaign ---------------------------------------------------------------------------------


def test_deadline_string_in_timezone(tmp_path):
    deadline = load(tmp_path, BASE).campaign.first_deadline
    assert deadline == dt.datetime(2023, 12, 8, 10, 0, tzinfo=dt.timezone.utc)


def test_deadline_toml_datetime(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', "first_deadline = 2023-12-08T18:00:00")
    assert load(tmp_path, text).campaign.first_deadline == load(tmp_path, BASE).campaign.first_deadline


def test_deadline_toml_datetime_is_aware(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', "first_deadline = 2023-12-08T18:00:00")
    assert load(tmp_path, text).campaign.first_deadline.tzinfo == ZoneInfo("Asia/Shanghai")


def test_deadline_iso_string(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', 'first_deadline = "2023-12-08T18:00"')
    assert load(tmp_path, text).campaign.first_deadline.hour == 18


def test_deadline_chinese_string(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', 'first_deadline = "2023年12月8日 18：00"')
    assert load(tmp_path, text).campaign.first_deadline.day == 8


def test_deadline_offset_converted(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', "first_deadline = 2023-12-08T10:00:00Z")
    assert load(tmp_path, text).campaign.first_deadline.hour == 18


def test_deadline_other_timezone(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"',
                   'last_deadline = "2024-03-15 18:00"\ntimezone = "Asia/Urumqi"')
    assert load(tmp_path, text).campaign.first_deadline.utcoffset() == dt.timedelta(hours=6)


def test_deadline_date_only_rejected(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', "first_deadline = 2023-12-08")
    assert "[campaign] first_deadline 的值 2023-12-08 无效" in error(tmp_path, text)


def test_deadline_date_string_rejected(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"', 'first_deadline = "2023-12-08"')
    assert "[campaign] first_deadline" in error(tmp_path, text)


def test_deadline_missing(tmp_path):
    text = replace('first_deadline = "2023-12-08 18:00"\n', "")
    assert "缺少 [campaign] first_deadline" in error(tmp_path, text)


def test_last_before_first_rejected(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"', 'last_deadline = "2023-12-01 18:00"')
    assert "早于 first_deadline" in error(tmp_path, text)


def test_last_deadline_other_weekday(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"', 'last_deadline = "2024-03-14 18:00"')
    assert "2024年3月14日（星期四）18:00" in error(tmp_path, text)


def test_last_deadline_other_time(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"', 'last_deadline = "2024-03-15 17:00"')
    assert "[campaign] last_deadline" in error(tmp_path, text)


def test_timezone_invalid(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"',
                   'last_deadline = "2024-03-15 18:00"\ntimezone = "Asia/Beijing"')
    assert "[campaign] timezone 的值 \"Asia/Beijing\" 无效" in error(tmp_path, text)


def test_skipped_weeks(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"',
                   'last_deadline = "2024-03-15 18:00"\nskipped_weeks = [11, 10]')
    assert load(tmp_path, text).campaign.skipped_weeks == (10, 11)


def test_skipped_weeks_reach_calendar(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"',
                   'last_deadline = "2024-03-15 18:00"\nskipped_weeks = [10]')
    assert 10 not in load(tmp_path, text).campaign.calendar().weeks()


def test_skipped_week_out_of_range(tmp_path):
    text = replace('last_deadline = "2024-03-15 18:00"',
                   'last_deadline = "2024-03-15 18:00"\nskipped_weeks = [16]')
    assert "[campaign] skipped_weeks 的值 16 无效" in error(tmp_path, text)


# --- units ------------------------------------------------------------------------------------


def test_unit_emails_lower_case(tmp_path):
    text = replace('emails = ["shuiding_kx@163.com"]', 'emails = ["ShuiDing_KX@163.com"]')
    assert load(tmp_path, text).units[0].emails == ("shuiding_kx@163.com",)


def test_duplicate_email_names_first_unit(tmp_path):
    text = replace('emails = ["lucaogou_kx@126.com"]', 'emails = ["SHUIDING_kx@163.com"]')
    assert "第 1 项单位“水定镇”" in error(tmp_path, text)


def test_duplicate_email_names_second_unit(tmp_path):
    text = replace('emails = ["lucaogou_kx@126.com"]', 'emails = ["SHUIDING_kx@163.com"]')
    assert "[[units]] 第 2 项（芦草沟镇）" in error(tmp_path, text)


def test_duplicate_email_names_key(tmp_path):
    text = replace('emails = ["lucaogou_kx@126.com"]', 'emails = ["shuiding_kx@163.com"]')
    assert "[[units]] 第 2 项（芦草沟镇） emails 的值 \"shuiding_kx@163.com\" 无效" in error(tmp_path, text)


def test_duplicate_unit_name(tmp_path):
    text = BASE + '\n[[units]]\nname = "水定镇"\nemails = ["other@example.test"]\n'
    assert "[[units]] 第 3 项（水定镇） name" in error(tmp_path, text)


def test_alias_naming_other_unit(tmp_path):
    text = replace('aliases = ["芦草沟镇人民政府"]', 'aliases = ["水定镇"]')
    assert "单位“水定镇”" in error(tmp_path, text)


def test_unit_email_invalid(tmp_path):
    text = replace('emails = ["shuiding_kx@163.com"]', 'emails = ["水定镇 <shuiding_kx@163.com>"]')
    assert "[[units]] 第 1 项（水定镇） emails" in error(tmp_path, text)


def test_unit_email_is_county_address(tmp_path):
    text = replace('emails = ["shuiding_kx@163.com"]', 'emails = ["county@example.test"]')
    assert "县级邮箱" in error(tmp_path, text)


def test_unit_name_missing(tmp_path):
    text = replace('name = "水定镇"\n', "")
    assert "缺少 [[units]] 第 1 项 name" in error(tmp_path, text)


def test_units_missing(tmp_path):
    assert "[[units]]" in error(tmp_path, BASE.split("[[units]]")[0])


def test_units_as_single_table(tmp_path):
    text = BASE.split("[[units]]")[0] + '[units]\nname = "水定镇"\n'
    assert "两层方括号" in error(tmp_path, text)


def test_county_addresses_include_from(tmp_path):
    text = replace('from = "county@example.test"', 'from = "Notices@Example.test"')
    assert load(tmp_path, text).county_addresses == frozenset(
        {"county@example.test", "notices@example.test"})


def test_county_addresses_skip_plain_login(tmp_path):
    text = replace('username = "county@example.test"', 'username = "county"')
    assert load(tmp_path, text).county_addresses == frozenset({"county@example.test"})
