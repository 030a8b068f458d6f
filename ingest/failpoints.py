"""Named crash points for the crash-recovery tests.

Setting the environment variable ``ZHOUBAO_FAILPOINT`` to a point's name makes the process kill
itself with SIGKILL when it reaches that point, as a power cut or an OOM kill would. The tests use
this to prove that no mail is lost and no record or reply is doubled at any step. With the variable
unset, :func:`failpoint` does nothing.
"""

import logging
import os
import signal

logger = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "ZHOUBAO_FAILPOINT"

# The points, in the order one message passes them.
POINTS = (
    "after-fetch",
    "after-archive",
    "after-commit",
    "before-move",
    "after-move",
    "before-send",
    "after-send",
)

# Kills outside the processing of a message.
OTHER_POINTS = ("after-migrations",)


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL if ``ZHOUBAO_FAILPOINT`` names this point."""
    if os.environ.get(ENVIRONMENT_VARIABLE) != name:
        return
    logger.warning("failpoint %s: killing process %d", name, os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
