"""Wait for new mail with IMAP IDLE (RFC 2177) and wake the intake job when it arrives.

The watcher keeps a connection of its own, with the folder selected read-only, in a thread of its
own. It never runs intake: it calls ``wake``, and the scheduled job does the work. Polling goes on
beside it, so a watcher that is down or gave up delays new mail by at most the poll interval.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from ingest.backoff import Backoff
from ingest.errors import AuthenticationFailed, MailboxError
from ingest.mailbox import Mailbox

logger = logging.getLogger(__name__)

# Seconds per wait in IDLE between two looks at the stop event: the delay of a clean stop.
STOP_CHECK = 1.0


class IdleWatcher:
    """Waits in IDLE and calls ``wake(force)`` on new mail, until ``stop`` is set.

    ``open_mailbox`` returns an unopened read-only :class:`Mailbox`. ``renew_after`` is the
    number of seconds after which IDLE is ended and sent again. After a lost connection the
    watcher reconnects with ``backoff``, and after a rejected login it waits ``login_retry``
    seconds, because the intake job alerts the admin and retries on its own schedule.
    """

    def __init__(self, open_mailbox: Callable[[], Mailbox], wake: Callable[[bool], None],
                 stop: threading.Event, *, renew_after: float, backoff: Backoff, login_retry: float,
                 random_fraction: Callable[[], float] = random.random):
        self._open_mailbox = open_mailbox
        self._wake = wake
        self._stop = stop
        self._renew_after = renew_after
        self._backoff = backoff
        self._login_retry = login_retry
        self._random_fraction = random_fraction
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the watcher thread. It is a daemon, so a hung connection cannot keep the process alive."""
        self._thread = threading.Thread(target=self.run, name="idle-watcher", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Connect, wait in IDLE and reconnect after failures until ``stop`` is set."""
        failures = 0
        while not self._stop.is_set():
            try:
                with self._open_mailbox() as mailbox:
                    if not mailbox.supports_idle():
                        logger.info("%r: the server does not offer IDLE, polling only", mailbox)
                        return
                    if failures:
                        logger.info("%r: IDLE connection restored", mailbox)
                    # No EXISTS reports mail that arrived before IDLE started or while the connection
                    # was down, so every connect wakes intake. After failures, the login has just
                    # shown that the server is back, which ends the intake job's back-off.
                    self._wake(failures > 0)
                    failures = 0
                    self._watch(mailbox)
            except AuthenticationFailed as err:
                logger.warning("IDLE: login rejected, retrying in %d s: %s", self._login_retry, err)
                self._stop.wait(self._login_retry)
            except MailboxError as err:
                failures += 1
                delay = self._backoff.delay(failures, self._random_fraction())
                logger.warning("IDLE: connection failed (%d in a row), reconnecting in %.0f s: %s",
                               failures, delay, err)
                self._stop.wait(delay)
        logger.info("IDLE: stopped")

    def _watch(self, mailbox: Mailbox) -> None:
        """Wait in IDLE, renewed every ``renew_after`` seconds, until ``stop`` is set."""
        waiting_logged = False
        while not self._stop.is_set():
            mailbox.idle_start()
            if not waiting_logged:
                # Logged once the server accepted IDLE, so mail after this line is reported.
                logger.info("%r: waiting for new mail with IDLE", mailbox)
                waiting_logged = True
            started = time.monotonic()
            while not self._stop.is_set() and time.monotonic() - started < self._renew_after:
                if mailbox.idle_wait(STOP_CHECK):
                    self._report_new_mail(mailbox)
            if mailbox.idle_end():
                self._report_new_mail(mailbox)
            logger.debug("%r: IDLE ended after %.0f s", mailbox, time.monotonic() - started)

    def _report_new_mail(self, mailbox: Mailbox) -> None:
        logger.info("%r: new mail reported by IDLE, waking intake", mailbox)
        self._wake(False)
