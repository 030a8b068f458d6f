"""service.watch: the IDLE watcher thread against the private Dovecot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from ingest.backoff import Backoff
from ingest.mailbox import Mailbox
from service.watch import IdleWatcher
from tests.test_mailbox import make_raw

pytestmark = pytest.mark.dovecot

WAIT = 30.0


class Wakes:
    """The wake-ups the watcher sent, as the ``force`` flag of each."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self._changed = threading.Condition()

    def __call__(self, force: bool) -> None:
        with self._changed:
            self.calls.append(force)
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[bool]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout=WAIT):
                raise AssertionError(f"{len(self.calls)} wake-ups within {WAIT} s, expected {count}")
            return list(self.calls)


def start_watcher(account, wakes: Wakes, stop: threading.Event, password: str | None = None,
                  renew_after: float = 600) -> IdleWatcher:
    def open_mailbox() -> Mailbox:
        return Mailbox(account.host, account.port, "none", account.username, password or account.password,
                       readonly=True)

    watcher = IdleWatcher(open_mailbox, wakes, stop, renew_after=renew_after,
                          backoff=Backoff(initial=0.2, maximum=1), login_retry=60, random_fraction=lambda: 0.0)
    watcher.start()
    return watcher


def wait_for_log(caplog, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + WAIT
    while sum(text in record.getMessage() for record in caplog.records) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} log records with {text!r} within {WAIT} s")
        time.sleep(0.05)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_watcher_wakes_on_connect(imap_account, stop):
    wakes = Wakes()
    start_watcher(imap_account, wakes, stop)
    assert wakes.wait_for(1) == [False]


def test_watcher_wakes_on_new_mail(imap_account, stop):
    wakes = Wakes()
    start_watcher(imap_account, wakes, stop)
    wakes.wait_for(1)
    imap_account.append(make_raw())
    assert wakes.wait_for(2) == [False, False]


def test_watcher_renews_idle(imap_account, stop, caplog):
    """GIVEN IDLE renewed every second WHEN mail arrives after two renewals THEN it is reported."""
    caplog.set_level(logging.DEBUG, logger="service.watch")
    wakes = Wakes()
    start_watcher(imap_account, wakes, stop, renew_after=1)
    wakes.wait_for(1)
    wait_for_log(caplog, "IDLE ended after", count=2)
    imap_account.append(make_raw())
    assert wakes.wait_for(2) == [False, False]


def test_watcher_reconnects_after_server_restart(imap_account, stop, dovecot):
    wakes = Wakes()
    start_watcher(imap_account, wakes, stop)
    wakes.wait_for(1)
    dovecot.stop()
    dovecot.start()
    assert wakes.wait_for(2) == [False, True]


def test_watcher_stops_on_event(imap_account, stop):
    wakes = Wakes()
    watcher = start_watcher(imap_account, wakes, stop)
    wakes.wait_for(1)
    stop.set()
    watcher.join(timeout=WAIT)
    assert not watcher.is_alive()


def test_watcher_rejected_login_never_wakes(imap_account, stop, caplog):
    wakes = Wakes()
    watcher = start_watcher(imap_account, wakes, stop, password="wrong")
    wait_for_log(caplog, "IDLE: login rejected")
    stop.set()
    watcher.join(timeout=WAIT)
    assert "retrying in 60 s" in caplog.text
    assert wakes.calls == []
