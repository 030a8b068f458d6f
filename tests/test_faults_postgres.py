"""PostgreSQL stopped in the middle of a cycle and started again: nothing lost, nothing doubled.

The test runs its own PostgreSQL cluster (tests/fixtures/private_postgres.py), so stopping it
disturbs no other test's database.
"""

from __future__ import annotations

import time

import pytest

from store.models import MessageOutcome
from tests.fixtures.service import ServiceSetup, config_text
from tests.test_intake import deliver
from tests.test_service import accepted_so_far, counts, wait_until
from tests.test_service_mailbox import in_reply_to, run_service, sink_mails, unit_mail  # noqa: F401 - fixture

pytestmark = pytest.mark.dovecot


@pytest.fixture
def on_private_postgres(tmp_path, imap_account, smtp_sink_auth, private_postgres) -> ServiceSetup:
    setup = ServiceSetup(tmp_path / "config.toml", private_postgres.url, imap_account, smtp_sink_auth)
    setup.config_path.write_text(config_text(
        imap_port=imap_account.port, imap_user=imap_account.username, imap_password=imap_account.password,
        smtp_port=smtp_sink_auth.port, database_url=private_postgres.url, poll_interval=600,
        mailbox_options="reconnect_delay = 1\nreconnect_max_delay = 4",
        smtp_options="rate_per_minute = 1000\ndaily_cap_per_recipient = 1000"), encoding="utf-8")
    return setup


def test_database_stopped_mid_cycle_recovers(on_private_postgres, private_postgres, run_service):
    """GIVEN 30 mails WHEN PostgreSQL stops while they are processed and starts again
    THEN the service recovers alone and stores and answers every mail exactly once."""
    setup = on_private_postgres
    for index in range(30):
        deliver(setup.account, unit_mail(index))
    service = run_service(setup)
    try:
        wait_until(lambda: accepted_so_far(setup.database_url) >= 3)
        private_postgres.stop()
        time.sleep(2)
        private_postgres.start()
        wait_until(lambda: len({mail["In-Reply-To"] for mail in sink_mails(setup.sink)}) == 30, timeout=120)
    finally:
        returncode = service.stop()

    log = service.log()
    assert returncode == 0, log
    assert "intake failed" in log or "database error" in log, "the database never went away"
    stored = counts(setup.database_url)
    assert stored[MessageOutcome.ACCEPTED] == 30, log
    assert sum(stored.values()) == 30
    # A reply the SMTP server took just before the database went away is sent again on recovery,
    # with the same Message-ID; no mail gets two different replies.
    replies = sink_mails(setup.sink)
    assert len({mail["Message-ID"] for mail in replies}) == 30
    assert set(in_reply_to(setup.sink)) == {f"<fault-{index}@example.cn>" for index in range(30)}
    assert setup.account.uids("INBOX") == []
