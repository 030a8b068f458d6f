"""When to try the mailbox again: capped exponential back-off, as pure functions.

Nothing here sleeps, reads a clock or draws a random number. Callers pass the failure count and a
random fraction in [0, 1), and get back the seconds to wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Exponents past this are capped anyway, and 2.0 ** 1024 would overflow a float.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class Backoff:
    """Delays after consecutive failures: ``initial`` seconds, doubling up to ``maximum``.

    ``jitter`` is the largest fraction of each delay that is taken off at random, so that
    clients which failed together do not all retry at the same moment. The delay therefore lies
    between ``(1 - jitter) * d`` and ``d``, where ``d`` is the capped doubling.
    """

    initial: float
    maximum: float
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"initial delay must be positive, got {self.initial}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum delay {self.maximum} is below the initial {self.initial}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def delay(self, failures: int, random_fraction: float) -> float:
        """Return the seconds to wait after ``failures`` consecutive failures (1 for the first).

        ``random_fraction`` is a number in [0, 1), such as ``random.random()``, and 0 gives the
        full delay. No failure yet means no wait.
        """
        if not 0 <= random_fraction < 1:
            raise ValueError(f"random_fraction must be in [0, 1), got {random_fraction}")
        if failures < 1:
            return 0.0
        exponent = min(failures - 1, _MAX_EXPONENT)
        capped = min(self.maximum, self.initial * 2.0 ** exponent)
        return capped * (1 - self.jitter * random_fraction)


class CycleResult(StrEnum):
    """The end state of one intake cycle, which sets when the next one runs."""

    DONE = "done"
    # The server was unreachable, the connection dropped or the database failed.
    FAILED = "failed"
    # The server rejected the login: retrying soon cannot help, the admin must renew the code.
    LOGIN_REJECTED = "login-rejected"


@dataclass(frozen=True)
class RetryPolicy:
    """The waits between intake cycles, in seconds."""

    poll_interval: float
    reconnect: Backoff
    login_retry: float


def next_cycle(result: CycleResult, failures: int, policy: RetryPolicy,
               random_fraction: float) -> tuple[int, float]:
    """Return the consecutive failures after a cycle that ended with ``result``, and the wait.

    ``failures`` counts the failed cycles before this one. A done cycle resets the count and
    waits the poll interval. A failed cycle backs off from ``policy.reconnect``, which may wait
    longer than the poll interval so that a dead server is not tried at every poll. A rejected
    login waits ``policy.login_retry`` and resets the count, because the reason is no longer the
    connection.
    """
    if result is CycleResult.DONE:
        return 0, policy.poll_interval
    if result is CycleResult.LOGIN_REJECTED:
        return 0, policy.login_retry
    failures += 1
    return failures, policy.reconnect.delay(failures, random_fraction)
