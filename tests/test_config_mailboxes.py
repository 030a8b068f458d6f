"""Several [[mailbox]] entries in one config: a prefecture serving its counties from one database."""

from __future__ import annotations

import pytest

from ingest.errors import ConfigError
from service.config import load_deployments, load_settings

# Every address is fictitious; nothing here connects to a server.
HEAD = """
[database]
url = "sqlite:///zhoubao.sqlite3"

[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
login = false

[campaign]
name = "科技之冬"
first_deadline = "2023-12-08 18:00"
last_deadline = "2024-03-15 18:00"
"""

HUOCHENG = """
[[mailbox]]
name = "霍城县"
host = "127.0.0.1"
port = 1143
security = "none"
username = "huocheng-kexie@example.cn"
password = "x"

[mailbox.smtp]
host = "127.0.0.1"
port = 2525
security = "none"
login = false
from = "huocheng-kexie@example.cn"
from_name = "霍城县科协"

[[mailbox.units]]
name = "水定镇"
emails = ["shuiding@example.cn"]

[[mailbox.units]]
name = "清水河镇"
emails = ["qingshuihe@example.cn"]
"""

YINING = """
[[mailbox]]
name = "伊宁县"
host = "127.0.0.1"
port = 1143
security = "none"
username = "yining-kexie@example.cn"
password = "x"

[mailbox.smtp]
host = "127.0.0.1"
port = 2525
security = "none"
login = false
from = "yining-kexie@example.cn"
from_name = "伊宁县科协"

[mailbox.campaign]
name = "科技之冬"
first_deadline = "2023-12-07 18:00"
last_deadline = "2024-03-14 18:00"

[[mailbox.units]]
name = "吉里于孜镇"
emails = ["jiliyuzi@example.cn"]
"""


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_deployments(write(tmp_path, text))
    return str(caught.value)


def test_two_mailboxes_read(tmp_path):
    deployments = load_deployments(write(tmp_path, HEAD + HUOCHENG + YINING))
    assert [item.name for item in deployments] == ["霍城县", "伊宁县"]


def test_units_belong_to_their_mailbox(tmp_path):
    huocheng, yining = load_deployments(write(tmp_path, HEAD + HUOCHENG + YINING))

    assert [unit.name for unit in huocheng.units] == ["水定镇", "清水河镇"]
    assert [unit.name for unit in yining.units] == ["吉里于孜镇"]


def test_entry_smtp_overrides_default(tmp_path):
    huocheng, yining = load_deployments(write(tmp_path, HEAD + HUOCHENG + YINING))

    assert huocheng.smtp.from_address == "huocheng-kexie@example.cn"
    assert yining.smtp.from_name == "伊宁县科协"


def test_campaign_default_and_override(tmp_path):
    huocheng, yining = load_deployments(write(tmp_path, HEAD + HUOCHENG + YINING))

    assert huocheng.campaign.first_deadline.day == 8
    assert yining.campaign.first_deadline.day == 7


def test_one_database_shared(tmp_path):
    huocheng, yining = load_deployments(write(tmp_path, HEAD + HUOCHENG + YINING))
    assert huocheng.database.url == yining.database.url


def test_load_settings_by_name(tmp_path):
    settings = load_settings(write(tmp_path, HEAD + HUOCHENG + YINING), mailbox="伊宁县")
    assert settings.mailbox.username == "yining-kexie@example.cn"


def test_load_settings_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="已配置的邮箱有：霍城县、伊宁县"):
        load_settings(write(tmp_path, HEAD + HUOCHENG + YINING), mailbox="察布查尔县")


def test_single_mailbox_has_no_name(tmp_path):
    single = HEAD.replace("[smtp]", "[smtp]\nfrom = \"county@example.cn\"") + """
[mailbox]
host = "127.0.0.1"
security = "none"
username = "county@example.cn"
password = "x"

[[units]]
name = "水定镇"
emails = ["shuiding@example.cn"]
"""
    assert [item.name for item in load_deployments(write(tmp_path, single))] == [None]


def test_missing_name_refused(tmp_path):
    message = error_of(tmp_path, HEAD + HUOCHENG + YINING.replace('name = "伊宁县"\n', "", 1))
    assert "第 2 个 [[mailbox]] 缺少 name" in message


def test_same_name_twice_refused(tmp_path):
    message = error_of(tmp_path, HEAD + HUOCHENG + YINING.replace('name = "伊宁县"', 'name = "霍城县"', 1))
    assert "两个 [[mailbox]] 都叫“霍城县”" in message


def test_top_level_units_refused(tmp_path):
    message = error_of(tmp_path, HEAD + '[[units]]\nname = "芦草沟镇"\nemails = ["l@example.cn"]\n'
                       + HUOCHENG + YINING)
    assert "[[mailbox.units]]" in message


def test_unit_in_two_mailboxes_refused(tmp_path):
    message = error_of(tmp_path, HEAD + HUOCHENG + YINING.replace("吉里于孜镇", "水定镇"))
    assert "单位“水定镇”同时出现在 [[mailbox]]“霍城县”和“伊宁县”中" in message


def test_same_folder_twice_refused(tmp_path):
    message = error_of(tmp_path, HEAD + HUOCHENG + YINING.replace("yining-kexie@example.cn\"\npassword",
                                                                  "huocheng-kexie@example.cn\"\npassword"))
    assert "收取的是同一个邮箱文件夹" in message


def test_entry_error_names_entry(tmp_path):
    message = error_of(tmp_path, HEAD + HUOCHENG + YINING.replace("port = 1143", "port = 99999", 1))
    assert message.startswith("第 2 个 [[mailbox]]（伊宁县）：")
    assert "port" in message
