"""``zhoubao demo``: one intake cycle against throwaway mail servers on 127.0.0.1.

Starts pymap (an in-memory IMAP server) and an aiosmtpd sink on free loopback ports, puts sample
township mails built by :mod:`service.samples` into the inbox, runs intake and outbox delivery
once into a SQLite file, and prints what was stored and which replies went out. Nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from imapclient import IMAPClient

from service.cli import UserError
from service.clock import Clock
from service.config import load_settings
from service.listing import submissions_as_text
from service.runtime import open_database, run_once
from service.samples import DEMO_UNITS, demo_mails

HOST = "127.0.0.1"
USERNAME = "county@example.test"
PASSWORD = "demo-password"
COUNTY_ADDRESS = "hckexie-demo@example.test"


def run_demo(directory: Path) -> int:
    """Run the demo in ``directory``; return the process exit code."""
    # The demo prints its own summary, which the service's INFO lines would bury. aiosmtpd 1.4
    # also logs a deprecation warning for every AUTH it handles.
    logging.disable(logging.WARNING)
    directory.mkdir(parents=True, exist_ok=True)
    database_file = directory / "zhoubao.sqlite3"
    database_file.unlink(missing_ok=True)

    with _imap_server() as imap_port, _smtp_sink() as (smtp_port, received):
        config_path = directory / "config.toml"
        config_path.write_text(_config_text(imap_port, smtp_port, database_file), encoding="utf-8")
        mails = demo_mails()
        _fill_inbox(imap_port, mails)
        click.echo(f"演示邮箱（127.0.0.1:{imap_port}）已放入 {len(mails)} 封乡镇来信，开始处理……\n")

        settings = load_settings(config_path)
        database = open_database(settings)
        run_once(settings, database, Clock())

        click.echo("一、保存的报表")
        click.echo(submissions_as_text(database))
        click.echo("\n二、发出的回复")
        _print_replies(received)
        click.echo(f"\n数据库：{database_file.resolve()}")
        click.echo(f"配置：{config_path.resolve()}（演示服务器已关闭，该配置仅供参考）")
        database.dispose()
    return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _imap_server() -> Iterator[int]:
    port = _free_port()
    code = ("import sys; from pymap.main import main; sys.argv = ['pymap'] + sys.argv[1:]; main()")
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--no-tls", "--host", HOST, "--port", str(port),
         "--no-service", "admin", "dict", "--demo-user", USERNAME, "--demo-password", PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError("演示用 IMAP 服务器（pymap）未能启动。")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.1)
    raise UserError(f"演示用 IMAP 服务器在 {timeout:.0f} 秒内未能就绪。")


class _Sink:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    accepted = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=accepted)


@contextlib.contextmanager
def _smtp_sink() -> Iterator[tuple[int, list]]:
    sink = _Sink()
    # The config's SMTP account logs in, so the sink offers AUTH over plaintext. It accepts only
    # the demo's own credentials, and nothing but this process connects to it.
    controller = Controller(sink, hostname=HOST, port=_free_port(), authenticator=_authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller.port, sink.messages
    finally:
        controller.stop()


def _fill_inbox(port: int, mails: list[bytes]) -> None:
    with IMAPClient(HOST, port, ssl=False, timeout=30) as client:
        client.login(USERNAME, PASSWORD)
        for raw in mails:
            sent = email.message_from_bytes(raw, policy=email.policy.default)["Date"].datetime
            client.append("INBOX", raw, msg_time=sent)


def _print_replies(received: list[tuple[str, list[str], bytes]]) -> None:
    if not received:
        click.echo("（没有发出回复）")
        return
    for _sender, recipients, raw in received:
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        click.echo(f"- 致 {', '.join(recipients)}：{mail['Subject']}（{mail['X-Zhoubao-Notice']}）")
    first = email.message_from_bytes(received[0][2], policy=email.policy.default)
    click.echo("\n第一封回复的正文：\n")
    click.echo(first.get_body(("plain",)).get_content())


def _config_text(imap_port: int, smtp_port: int, database_file: Path) -> str:
    units = "\n".join(
        f'[[units]]\nname = "{name}"\naliases = {list(aliases)!r}\nemails = ["{address}"]\n'
        for name, aliases, address in DEMO_UNITS
    ).replace("'", '"')
    return f"""# zhoubao 演示配置：邮件服务器只在本机 127.0.0.1 上临时运行。
[mailbox]
host = "{HOST}"
port = {imap_port}
security = "none"
username = "{USERNAME}"
password = "{PASSWORD}"

[smtp]
host = "{HOST}"
port = {smtp_port}
security = "none"
from = "{COUNTY_ADDRESS}"
from_name = "霍城县科协（演示）"

[database]
url = "sqlite:///{database_file.resolve()}"

[campaign]
name = "科技之冬"
first_deadline = 2023-12-08T18:00:00
last_deadline = 2024-03-15T18:00:00
timezone = "Asia/Shanghai"

{units}"""
