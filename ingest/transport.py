"""Transport security of the connections to the IMAP and SMTP servers, shared by both clients."""

from __future__ import annotations

from enum import StrEnum

from ingest.errors import ConfigError

# Hosts that plaintext connections may go to: nothing on them crosses a network.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Security(StrEnum):
    """Transport security of a connection to the IMAP or SMTP server."""

    SSL = "ssl"  # implicit TLS from the first byte (IMAPS 993, SMTPS 465)
    STARTTLS = "starttls"  # plaintext greeting, then STARTTLS (IMAP 143, submission 587)
    NONE = "none"  # no TLS at all, for a server on this machine only


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names this machine, with or without IPv6 brackets."""
    return host.lower().strip("[]") in LOOPBACK_HOSTS


def parse_security(security: str, host: str, section: str, tls_ports: str) -> Security:
    """Return the security named in ``[section] security``, refusing plaintext off this machine.

    ``tls_ports`` names the ports to suggest, such as "ssl（端口 993）或 starttls（端口 143）".
    Raises ConfigError with a Chinese message for the admin.
    """
    try:
        parsed = Security(security)
    except ValueError as err:
        raise ConfigError(
            f"[{section}] security 的值“{security}”无效：应为 ssl、starttls 或 none 之一。"
        ) from err
    if parsed is Security.NONE and not is_loopback(host):
        raise ConfigError(
            f"[{section}] security = “none” 只能用于本机（127.0.0.1、localhost 或 ::1），"
            f"而 host 为“{host}”，密码会以明文经过网络。请改为 {tls_ports}。"
        )
    return parsed
