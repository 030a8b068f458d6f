"""Bounces: failed recipients read from delivery status notifications, and the addresses recorded
as bouncing on SQLite and PostgreSQL, with migration 0003 applied over data of revision 0002."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command

from ingest.bounces import bounced_recipients, failed_recipients
from ingest.message import parse_message
from service.samples.mails import MailStyle, build_mail
from store import repository
from store.models import BouncingAddress
from store.session import Database
from tests.test_demand import fill_0001, migrate

NOW = dt.datetime(2024, 1, 12, 19, 5, tzinfo=dt.timezone.utc)
TOWNSHIP = "shuiding_kx@example.test"
CRLF = "\r\n"


def recipient_block(final: str, action: str = "failed", status: str = "5.1.1",
                    original: str | None = None, diagnostic: str | None = None) -> str:
    lines = []
    if original is not None:
        lines.append(f"Original-Recipient: {original}")
    lines += [f"Final-Recipient: {final}", f"Action: {action}", f"Status: {status}"]
    if diagnostic is not None:
        lines.append(f"Diagnostic-Code: {diagnostic}")
    return CRLF.join(lines)


def dsn(*blocks: str, status_type: str = "message/delivery-status", encoding: str | None = None) -> bytes:
    """Return a bounce as Postfix writes it: notice, delivery status, returned headers."""
    status_head = [f"Content-Type: {status_type}"]
    if encoding:
        status_head.append(f"Content-Transfer-Encoding: {encoding}")
    parts = [
        "From: MAILER-DAEMON@mx.example.test (Mail Delivery System)",
        "To: hckexie2023@example.test",
        "Subject: Undelivered Mail Returned to Sender",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R1"',
        "",
        "--R1",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "I'm sorry to have to inform you that your message could not be delivered.",
        "",
        "--R1",
        *status_head,
        "",
        "Reporting-MTA: dns; mx.example.test",
        "Arrival-Date: Fri, 12 Jan 2024 19:04:58 +0800",
        "",
        CRLF.join(f"{block}{CRLF}" for block in blocks),
        "--R1",
        "Content-Type: text/rfc822-headers",
        "",
        "From: =?utf-8?b?6ZyN5Z+O5Y6/56eR5Y2P?= <hckexie2023@example.test>",
        f"To: {TOWNSHIP}",
        "Subject: =?utf-8?b?5YKs5oql?=",
        "",
        "--R1--",
        "",
    ]
    return CRLF.join(parts).encode("utf-8")


# --- reading bounces ---------------------------------------------------------------------------


def test_bounce_final_recipient():
    assert bounced_recipients(dsn(recipient_block(f"rfc822; {TOWNSHIP}"))) == [TOWNSHIP]


def test_bounce_prefers_original_recipient():
    raw = dsn(recipient_block("rfc822; li.ming@forward.example.test", original=f"rfc822;{TOWNSHIP}"))

    assert bounced_recipients(raw) == [TOWNSHIP]


def test_bounce_address_lower_case():
    assert bounced_recipients(dsn(recipient_block("rfc822; Shuiding_KX@Example.TEST"))) == [TOWNSHIP]


def test_bounce_angle_brackets():
    assert bounced_recipients(dsn(recipient_block(f"rfc822; <{TOWNSHIP}>"))) == [TOWNSHIP]


def test_bounce_several_recipients():
    raw = dsn(recipient_block(f"rfc822; {TOWNSHIP}"), recipient_block("rfc822; sangong_kx@example.test"))

    assert bounced_recipients(raw) == [TOWNSHIP, "sangong_kx@example.test"]


def test_bounce_recipient_once():
    raw = dsn(recipient_block(f"rfc822; {TOWNSHIP}"), recipient_block(f"rfc822; {TOWNSHIP}"))

    assert bounced_recipients(raw) == [TOWNSHIP]


@pytest.mark.parametrize("action", ["delayed", "delivered", "relayed", "expanded"])
def test_bounce_other_actions_skipped(action):
    assert bounced_recipients(dsn(recipient_block(f"rfc822; {TOWNSHIP}", action=action, status="4.4.1"))) == []


def test_bounce_action_case_ignored():
    assert bounced_recipients(dsn(recipient_block(f"rfc822; {TOWNSHIP}", action="Failed"))) == [TOWNSHIP]


def test_bounce_without_action_5xx():
    raw = dsn(f"Final-Recipient: rfc822; {TOWNSHIP}{CRLF}Status: 5.2.2")

    assert bounced_recipients(raw) == [TOWNSHIP]


def test_bounce_without_action_4xx_skipped():
    raw = dsn(f"Final-Recipient: rfc822; {TOWNSHIP}{CRLF}Status: 4.2.2")

    assert bounced_recipients(raw) == []


def test_bounce_unknown_address_type_skipped():
    assert bounced_recipients(dsn(recipient_block("x400; C=CN;A=;P=county;S=Li"))) == []


def test_bounce_status_and_diagnostic():
    raw = dsn(recipient_block(f"rfc822; {TOWNSHIP}", status="5.1.1",
                              diagnostic="smtp; 550 User not found: shuiding_kx"))

    [recipient] = failed_recipients(raw)
    assert recipient.reason == "5.1.1 smtp; 550 User not found: shuiding_kx"


def test_bounce_folded_diagnostic_unfolded():
    raw = dsn(recipient_block(f"rfc822; {TOWNSHIP}", diagnostic=f"smtp; 552 Requested mail action{CRLF}    aborted: mailbox full"))

    [recipient] = failed_recipients(raw)
    assert recipient.diagnostic == "smtp; 552 Requested mail action aborted: mailbox full"


def test_bounce_status_comment_dropped():
    [recipient] = failed_recipients(dsn(recipient_block(f"rfc822; {TOWNSHIP}", status="5.1.1 (bad address)")))

    assert recipient.status == "5.1.1"


def test_bounce_global_delivery_status():
    raw = dsn(recipient_block(f"utf-8; {TOWNSHIP}"), status_type="message/global-delivery-status")

    assert bounced_recipients(raw) == [TOWNSHIP]


def test_bounce_7bit_declared():
    assert bounced_recipients(dsn(recipient_block(f"rfc822; {TOWNSHIP}"), encoding="7bit")) == [TOWNSHIP]


def test_bounce_sample_mail():
    raw = build_mail(MailStyle.BOUNCE, to="hckexie-county@example.test")

    assert bounced_recipients(raw) == ["hckexie-county@example.test"]


def test_bounce_flagged_by_message_parser():
    assert parse_message(dsn(recipient_block(f"rfc822; {TOWNSHIP}"))).bounce is True


def test_plain_mail_no_recipients():
    assert bounced_recipients(build_mail(MailStyle.WEBMAIL_163)) == []


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe not a mail", b"Content-Type: multipart/report; boundary=\r\n\r\n--"])
def test_bounce_malformed_no_error(raw):
    assert bounced_recipients(raw) == []


# --- recording bounces -------------------------------------------------------------------------


def record(database: Database, address: str = TOWNSHIP, reason: str = "5.1.1 user unknown",
           now: dt.datetime = NOW) -> None:
    with database.session() as session:
        repository.record_bounce(session, address, reason, now)


def stored(database: Database, address: str = TOWNSHIP) -> BouncingAddress | None:
    with database.session() as session:
        return repository.find_bouncing(session, address)


def test_record_bounce_new_address(database):
    record(database)

    assert stored(database).count == 1


def test_record_bounce_times(database):
    record(database)

    bounce = stored(database)
    assert (bounce.first_seen_at, bounce.last_seen_at) == (NOW, NOW)


def test_record_bounce_returns_record(database):
    with database.session() as session:
        bounce = repository.record_bounce(session, TOWNSHIP, "5.1.1 user unknown", NOW)

        assert (bounce.address, bounce.count) == (TOWNSHIP, 1)


def test_record_bounce_again_counts(database):
    record(database)
    record(database, now=NOW + dt.timedelta(days=7))

    assert stored(database).count == 2


def test_record_bounce_again_last_seen(database):
    record(database)
    record(database, now=NOW + dt.timedelta(days=7))

    assert stored(database).last_seen_at == NOW + dt.timedelta(days=7)


def test_record_bounce_again_first_seen_kept(database):
    record(database)
    record(database, now=NOW + dt.timedelta(days=7))

    assert stored(database).first_seen_at == NOW


def test_record_bounce_older_report_later(database):
    record(database)
    record(database, now=NOW - dt.timedelta(days=1))

    bounce = stored(database)
    assert (bounce.first_seen_at, bounce.last_seen_at) == (NOW - dt.timedelta(days=1), NOW)


def test_record_bounce_reason_updated(database):
    record(database)
    record(database, reason="5.2.2 mailbox full", now=NOW + dt.timedelta(days=1))

    assert stored(database).reason == "5.2.2 mailbox full"


def test_record_bounce_case_insensitive(database):
    record(database, TOWNSHIP.upper())
    record(database, TOWNSHIP)

    assert stored(database, "Shuiding_KX@example.test").count == 2


def test_find_bouncing_unknown(database):
    assert stored(database, "sangong_kx@example.test") is None


def test_list_bouncing_by_address(database):
    record(database, "sangong_kx@example.test")
    record(database, "daxigou_kx@example.test")

    with database.session() as session:
        addresses = [bounce.address for bounce in repository.list_bouncing(session)]
    assert addresses == ["daxigou_kx@example.test", "sangong_kx@example.test"]


def test_record_bounce_from_dsn(database):
    # GIVEN a bounce for a reminder sent to the township
    raw = dsn(recipient_block(f"rfc822; {TOWNSHIP}", diagnostic="smtp; 550 User not found"))

    # WHEN each failed recipient is recorded, as intake does
    with database.session() as session:
        for recipient in failed_recipients(raw):
            repository.record_bounce(session, recipient.address, recipient.reason, NOW)

    # THEN the address is marked as bouncing with the server's reply
    assert stored(database).reason == "5.1.1 smtp; 550 User not found"


# --- migration 0003 ----------------------------------------------------------------------------

DEMAND_FORMS_0002 = sa.table(
    "demand_forms", *(sa.column(name, type_) for name, type_ in {
        "id": sa.Integer(), "message_id": sa.Integer(), "unit_id": sa.Integer(),
        "status": sa.String(), "file_name": sa.Text(), "file_sha256": sa.String(),
        "source": sa.String(), "received_at": sa.DateTime(timezone=True),
        "created_at": sa.DateTime(timezone=True),
    }.items()))
DEMAND_ROWS_0002 = sa.table(
    "demand_rows", *(sa.column(name, type_) for name, type_ in {
        "id": sa.Integer(), "demand_form_id": sa.Integer(), "position": sa.Integer(),
        "experts": sa.Text(), "audience": sa.Text(), "time": sa.Text(), "place_mode": sa.Text(),
        "content": sa.Text(), "resources": sa.Text(), "ref": sa.String(),
    }.items()))
TABLES_0002 = ["units", "messages", "submissions", "report_rows", "violations", "outbox",
               "demand_forms", "demand_rows"]


def fill_0002(database: Database) -> None:
    """Write one row into each table that revision 0002 adds, referring to the rows of fill_0001."""
    with database.engine.begin() as connection:
        connection.execute(sa.insert(DEMAND_FORMS_0002).values(
            id=1, message_id=1, unit_id=1, status="accepted", file_name="需求表.docx",
            file_sha256="d" * 64, source="表格1", received_at=NOW, created_at=NOW))
        connection.execute(sa.insert(DEMAND_ROWS_0002).values(
            id=1, demand_form_id=1, position=0, experts="农技专家", audience="农牧民",
            time="12月", place_mode="线下", content="冬季养殖", resources="", ref="表格1第3行"))


@pytest.fixture
def database_0002(database_url):
    """A database at revision 0002 with one row in each of its tables."""
    db = Database(database_url)
    migrate(db, command.upgrade, "0002")
    fill_0001(db)
    fill_0002(db)
    yield db
    db.dispose()


def row_counts(database: Database, tables: list[str]) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {name: connection.scalar(sa.select(sa.func.count()).select_from(sa.table(name)))
                for name in tables}


def test_upgrade_0002_then_record_bounce(database_0002):
    database_0002.upgrade()

    record(database_0002)

    assert stored(database_0002).count == 1


def test_downgrade_0003_keeps_rows(database_0002):
    # GIVEN a database upgraded to 0003 with a bounce recorded
    database_0002.upgrade()
    record(database_0002)

    # WHEN it is downgraded to 0002
    migrate(database_0002, command.downgrade, "0002")

    # THEN the older tables keep their rows and the bounce table is gone
    assert row_counts(database_0002, TABLES_0002) == dict.fromkeys(TABLES_0002, 1)
    assert "bouncing_addresses" not in sa.inspect(database_0002.engine).get_table_names()
