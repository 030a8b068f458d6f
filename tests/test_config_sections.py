"""The optional [limits], [libreoffice], [admin] and [service] alert settings of config.toml."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest.calendar import NoticeSchedule, NoticeTime
from ingest.errors import ConfigError
from service.config import load_settings
from tests.fixtures.service import config_text


def write(tmp_path, extra: str):
    path = tmp_path / "config.toml"
    base = config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                       smtp_port=1025, database_url="sqlite:///" + str(tmp_path / "z.sqlite3"), notices=True)
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


# --- [notices] and the reporting range of a unit -----------------------------------------------


def notices_error(tmp_path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, extra))
    return str(caught.value)


def with_unit_keys(tmp_path, keys: str):
    path = write(tmp_path, "")
    text = path.read_text(encoding="utf-8")
    marker = "[[units]]\n"
    first = text.index(marker) + len(marker)
    path.write_text(text[:first] + keys + "\n" + text[first:], encoding="utf-8")
    return path


def test_notices_default_schedule(tmp_path):
    assert load_settings(write(tmp_path, "")).notices == NoticeSchedule()


def test_notices_reminder_day_before(tmp_path):
    settings = load_settings(write(tmp_path, '[notices]\nreminder = "截止前1天 16:00"\n'))
    assert settings.notices.reminder == NoticeTime(-1, dt.time(16, 0))


def test_notices_second_overdue_days_after(tmp_path):
    settings = load_settings(write(tmp_path, '[notices]\noverdue_2 = "截止后4天 9:30"\n'))
    assert settings.notices.overdue_2 == NoticeTime(4, dt.time(9, 30))


def test_notices_bare_time_same_day(tmp_path):
    settings = load_settings(write(tmp_path, '[notices]\ndigest = "20:00"\n'))
    assert settings.notices.digest == NoticeTime(0, dt.time(20, 0))


def test_notices_full_width_digits(tmp_path):
    settings = load_settings(write(tmp_path, '[notices]\noverdue = "截止当天 １９：００"\n'))
    assert settings.notices.overdue == NoticeTime(0, dt.time(19, 0))


def test_notices_false_turns_off(tmp_path):
    settings = load_settings(write(tmp_path, "[notices]\noverdue_2 = false\n"))
    assert settings.notices.overdue_2 is None


def test_notices_weekday_form_rejected(tmp_path):
    message = notices_error(tmp_path, '[notices]\nreminder = "周五 12:00"\n')
    assert "截止当天 12:00" in message


def test_notices_error_names_key(tmp_path):
    message = notices_error(tmp_path, '[notices]\nreminder = "周五 12:00"\n')
    assert "[notices] reminder" in message


def test_notices_reminder_after_deadline(tmp_path):
    message = notices_error(tmp_path, '[notices]\nreminder = "截止当天 18:30"\n')
    assert "早于当天的截止时间 18:00" in message


def test_notices_overdue_before_deadline(tmp_path):
    message = notices_error(tmp_path, '[notices]\noverdue = "截止当天 17:00"\n')
    assert "晚于当天的截止时间 18:00" in message


def test_notices_seven_days_rejected(tmp_path):
    message = notices_error(tmp_path, '[notices]\noverdue_2 = "截止后7天 10:00"\n')
    assert "截止后7天 10:00" in message


def test_notices_second_before_first(tmp_path):
    message = notices_error(tmp_path, '[notices]\noverdue = "截止后1天 10:00"\noverdue_2 = "截止当天 20:00"\n')
    assert "第二次逾期提醒应晚于第一次" in message


def test_notices_unknown_key(tmp_path):
    message = notices_error(tmp_path, '[notices]\noverdue2 = "截止后3天 10:00"\n')
    assert "overdue_2" in message


def test_unit_reports_whole_campaign(tmp_path):
    unit = load_settings(write(tmp_path, "")).units[0]
    assert (unit.from_week, unit.until_week) == (1, None)


def test_unit_joins_late(tmp_path):
    unit = load_settings(with_unit_keys(tmp_path, "from_week = 4")).units[0]
    assert unit.from_week == 4


def test_unit_leaves(tmp_path):
    unit = load_settings(with_unit_keys(tmp_path, "until_week = 9")).units[0]
    assert unit.until_week == 9


def test_unit_until_before_from(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(with_unit_keys(tmp_path, "from_week = 6\nuntil_week = 5"))
    assert "until_week" in str(caught.value)


def test_unit_week_after_campaign(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(with_unit_keys(tmp_path, "from_week = 16"))
    assert "1 到 15" in str(caught.value)


def test_unit_villages(tmp_path):
    unit = load_settings(with_unit_keys(tmp_path, "villages = 14")).units[0]
    assert unit.villages == 14


def test_unit_villages_default_unknown(tmp_path):
    assert load_settings(write(tmp_path, "")).units[0].villages is None


def test_unit_villages_zero_rejected(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(with_unit_keys(tmp_path, "villages = 0"))
    assert "villages" in str(caught.value)


def test_example_notices_are_defaults(tmp_path):
    example = tmp_path / "config.toml"
    example.write_bytes((Path(__file__).resolve().parent.parent / "config.example.toml").read_bytes())
    settings = load_settings(example, {"ZHOUBAO_IMAP_PASSWORD": "x"})
    assert settings.notices == NoticeSchedule()


# --- [admin] contact ----------------------------------------------------------------------------


def test_admin_contact_read(tmp_path):
    extra = '[admin]\nname = "贾老师"\nphone = "0999-3021234"\noffice = "霍城县科协办公室"\n'
    admin = load_settings(write(tmp_path, extra)).admin
    assert (admin.name, admin.phone, admin.office) == ("贾老师", "0999-3021234", "霍城县科协办公室")


def test_admin_contact_defaults_empty(tmp_path):
    admin = load_settings(write(tmp_path, "")).admin
    assert (admin.name, admin.phone, admin.office) == ("", "", "")


def test_admin_contact_without_emails(tmp_path):
    settings = load_settings(write(tmp_path, '[admin]\nname = "贾老师"\n'))
    assert settings.admin_emails == ()


def test_admin_phone_extension(tmp_path):
    admin = load_settings(write(tmp_path, '[admin]\nphone = "0999-3021234转8001"\n')).admin
    assert admin.phone == "0999-3021234转8001"


def test_admin_phone_words_rejected(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[admin]\nphone = "请找贾老师"\n'))
    assert "phone" in str(caught.value)
    assert "请找贾老师" in str(caught.value)


def test_admin_phone_too_short(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[admin]\nphone = "110"\n'))
    assert "0999-3021234" in str(caught.value)


def test_admin_name_empty_rejected(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[admin]\nname = ""\n'))
    assert "name" in str(caught.value)


def test_admin_unknown_key_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[admin]\ntelephone = "0999-3021234"\n'))
    assert "telephone" in str(caught.value)


def test_example_admin_contact_commented(tmp_path):
    example = tmp_path / "config.toml"
    example.write_bytes((Path(__file__).resolve().parent.parent / "config.example.toml").read_bytes())
    settings = load_settings(example, {"ZHOUBAO_IMAP_PASSWORD": "x"})
    assert settings.admin.name == ""


def test_alert_thresholds_default_to_three(tmp_path):
    health = load_settings(write(tmp_path, "")).health
    assert (health.alert_after_failures, health.alert_after_intervals) == (3, 3)


def test_alert_thresholds_read(tmp_path):
    settings = load_settings(write(tmp_path, "[service]\nalert_after_failures = 5\nalert_after_intervals = 4\n"))
    assert (settings.health.alert_after_failures, settings.health.alert_after_intervals) == (5, 4)


@pytest.mark.parametrize("line, message", [
    ("alert_after_failures = 0", "[service] alert_after_failures 的值 0 无效：应为 1 到 100 之间的整数（单位：次）"),
    ('alert_after_failures = "3"', '[service] alert_after_failures 的值 "3" 无效'),
    ("alert_after_intervals = 1", "[service] alert_after_intervals 的值 1 无效：应为 2 到 100 之间的整数（单位：个收信间隔）"),
])
def test_alert_threshold_invalid_named(tmp_path, line, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f"[service]\n{line}\n"))
    assert message in str(caught.value)
