"""Kill the service at each step of one message and check that nothing is lost or doubled.

The service runs as a real process; ``ZHOUBAO_FAILPOINT`` makes it SIGKILL itself at the named
step. A second, undisturbed run must then finish the work exactly once.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
from email import policy

import pytest

from ingest.failpoints import ENVIRONMENT_VARIABLE, POINTS
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from store import repository
from store.session import Database
from tests.fixtures.service import config_text
from tests.test_intake import NOW, at, deliver

pytestmark = pytest.mark.dovecot


def run_service(config_path, failpoint: str | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.pop(ENVIRONMENT_VARIABLE, None)
    if failpoint:
        environment[ENVIRONMENT_VARIABLE] = failpoint
    command = [sys.executable, "-c", "from service.cli import main; main()",
               "--config", str(config_path), "--now", NOW, "run", "--once"]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)


def stored_counts(database_url: str) -> tuple[int, int, int]:
    """Return (messages, submissions, outbox rows) in the database."""
    database = Database(database_url)
    try:
        with database.session() as session:
            return (
                sum(repository.message_counts(session).values()),
                len(repository.list_submissions(session)),
                len(repository.list_outbox(session)),
            )
    finally:
        database.dispose()


def reply_ids(sink) -> list[str]:
    return [email.message_from_bytes(item.raw, policy=policy.default)["Message-ID"] for item in sink.messages]


@pytest.fixture
def crashed(request, service_setup):
    """GIVEN one report in the inbox WHEN the service is killed at a step, then run again."""
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="水定镇第3周.xlsx", date=at(22, 16, 42)))

    killed = run_service(service_setup.config_path, failpoint=request.param)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    finished = run_service(service_setup.config_path)
    assert finished.returncode == 0, finished.stderr
    return service_setup


@pytest.mark.parametrize("crashed", POINTS, indirect=True)
def test_crash_stores_everything_once(crashed):
    assert stored_counts(crashed.database_url) == (1, 1, 1)


@pytest.mark.parametrize("crashed", POINTS, indirect=True)
def test_crash_moves_message(crashed):
    assert crashed.account.uids("INBOX") == []
    assert len(crashed.account.uids("已处理")) == 1


@pytest.mark.parametrize("crashed", [point for point in POINTS if point != "after-send"], indirect=True)
def test_crash_sends_reply_once(crashed):
    assert len(reply_ids(crashed.sink)) == 1


@pytest.mark.parametrize("crashed", ["after-send"], indirect=True)
def test_crash_after_send_resends_same_id(crashed):
    """The one documented double: the SMTP server accepted the reply before the kill."""
    ids = reply_ids(crashed.sink)
    assert len(ids) == 2
    assert ids[0] == ids[1]


def test_killed_migration_leaves_no_half_schema(tmp_path, database_url):
    """GIVEN a first start killed inside the migration WHEN started again THEN it migrates."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                                       smtp_port=1025, database_url=database_url), encoding="utf-8")
    command = [sys.executable, "-c", "from service.cli import main; main()", "--config", str(config_path),
               "db", "upgrade"]
    environment = {**os.environ, ENVIRONMENT_VARIABLE: "after-migrations"}

    killed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    environment.pop(ENVIRONMENT_VARIABLE)
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert finished.returncode == 0, finished.stderr
    assert stored_counts(database_url) == (0, 0, 0)
