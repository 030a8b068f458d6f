"""Database tables: archived messages, units, submissions with their rows and violations, 附件1
demand forms with their rows, explained findings, summary materials, outbox, addresses that
bounced, and the record of intake runs.

The schema itself is created by the Alembic migrations in ``store/migrations``; these classes must
stay in step with them. States are ``StrEnum`` members stored as their string value.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class MessageOutcome(StrEnum):
    """Outcome of processing one archived mail."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNREADABLE = "unreadable"
    HELD = "held"
    IGNORED = "ignored"
    FAILED = "failed"
    SUMMARY = "summary"  # 总结材料, kept as received


class SubmissionStatus(StrEnum):
    """State of one weekly table received from a unit."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class OutboxStatus(StrEnum):
    """Delivery state of one composed reply."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp stored in UTC.

    SQLite has no time zone type, so SQLAlchemy returns naive values there. This type converts
    aware values to UTC on write and marks values read back as UTC, so both backends return the
    same aware datetime. A naive value raises ValueError because its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _state(enum_class: type[StrEnum]) -> Enum:
    # A VARCHAR holding the member value: no PostgreSQL ENUM type, so adding a state later is a
    # code change, not a schema migration.
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of every zhoubao table."""


class Unit(Base):
    """A township or other body that files the weekly table (填报单位)."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("name", name="uq_units_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class Message(Base):
    """One mail fetched from the county mailbox, archived with its raw bytes.

    ``message_key`` is the Message-ID header, or ``sha256:<hex>`` when the mail has none, so the
    content key (message_key, sha256) is never NULL. A second copy of the same mail, or the same
    mail seen again after a UIDVALIDITY reset, matches the first record by that key.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uid_validity", "uid", name="uq_messages_uid"),
        UniqueConstraint("message_key", "sha256", name="uq_messages_content"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    uid_validity: Mapped[int] = mapped_column(Integer)
    uid: Mapped[int] = mapped_column(Integer)
    message_id_header: Mapped[str | None] = mapped_column(Text)
    message_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred so that listing messages does not load every mail's bytes.
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(Integer)
    internal_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[MessageOutcome] = mapped_column(
        _state(MessageOutcome), default=MessageOutcome.PENDING
    )
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    processed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    moved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    # View-only: a Submission built with message=... must not join the session through this
    # collection before record_submission has flushed the superseded row.
    submissions: Mapped[list[Submission]] = relationship(viewonly=True)


class Submission(Base):
    """One weekly table read from one attachment, accepted or rejected.

    A unit has at most one accepted submission per week: a newer accepted one marks the older
    ``superseded`` and points it at its successor through ``superseded_by_id``.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint(
            "unit_id", "week", "file_sha256", "source", name="uq_submissions_file"
        ),
        Index(
            "uq_submissions_accepted",
            "unit_id",
            "week",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
            sqlite_where=text("status = 'accepted'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    week: Mapped[int] = mapped_column(Integer)
    status: Mapped[SubmissionStatus] = mapped_column(_state(SubmissionStatus))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    unit_text: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(100))
    fill_date: Mapped[dt.date | None] = mapped_column(Date)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    message: Mapped[Message] = relationship()
    unit: Mapped[Unit] = relationship(lazy="joined")
    rows: Mapped[list[ReportRowRecord]] = relationship(
        order_by="ReportRowRecord.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    violations: Mapped[list[ViolationRecord]] = relationship(
        order_by="ViolationRecord.id",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class ReportRowRecord(Base):
    """One data row of a stored submission; ``c2`` .. ``c20`` are the form's columns 2..20.

    A column is NULL where the cell was not a whole number ≥ 0 (a V1 violation records the text).
    """

    __tablename__ = "report_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    c2: Mapped[int | None] = mapped_column(Integer)
    c3: Mapped[int | None] = mapped_column(Integer)
    c4: Mapped[int | None] = mapped_column(Integer)
    c5: Mapped[int | None] = mapped_column(Integer)
    c6: Mapped[int | None] = mapped_column(Integer)
    c7: Mapped[int | None] = mapped_column(Integer)
    c8: Mapped[int | None] = mapped_column(Integer)
    c9: Mapped[int | None] = mapped_column(Integer)
    c10: Mapped[int | None] = mapped_column(Integer)
    c11: Mapped[int | None] = mapped_column(Integer)
    c12: Mapped[int | None] = mapped_column(Integer)
    c13: Mapped[int | None] = mapped_column(Integer)
    c14: Mapped[int | None] = mapped_column(Integer)
    c15: Mapped[int | None] = mapped_column(Integer)
    c16: Mapped[int | None] = mapped_column(Integer)
    c17: Mapped[int | None] = mapped_column(Integer)
    c18: Mapped[int | None] = mapped_column(Integer)
    c19: Mapped[int | None] = mapped_column(Integer)
    c20: Mapped[int | None] = mapped_column(Integer)
    remark: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str] = mapped_column(String(200))

    def values(self) -> dict[int, int | None]:
        """Map each column number 2..20 to its stored value."""
        return {column: getattr(self, f"c{column}") for column in range(2, 21)}


class ViolationRecord(Base):
    """One broken rule of a stored submission, as ``ingest.table.Violation`` reported it.

    ``columns`` is the comma-separated column numbers; ``found`` maps each column number, as a
    JSON string key, to the value read.
    """

    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    rule: Mapped[str] = mapped_column(String(8))
    row: Mapped[int] = mapped_column(Integer)
    cell: Mapped[str] = mapped_column(String(200))
    columns: Mapped[str] = mapped_column(Text)
    found: Mapped[dict[str, int | str]] = mapped_column(JSON)
    expected: Mapped[str] = mapped_column(Text)


class OutboxMail(Base):
    """A composed reply waiting for, or done with, SMTP delivery.

    ``raw`` is the whole mail as composed, so a resend carries the same Message-ID header.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("mail_message_id", name="uq_outbox_mail_message_id"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("uq_outbox_notice_key", "notice_key", unique=True),
        Index("ix_outbox_mailbox_due", "mailbox", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Scheduled notices and alerts only: the notice and recipient, such as
    # ``overdue; week=3; to=a@example.cn``.
    notice_key: Mapped[str | None] = mapped_column(String(400))
    # The mailbox (``Message.mailbox`` form) whose SMTP account sends this mail.
    mailbox: Mapped[str | None] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    mail_message_id: Mapped[str] = mapped_column(String(300))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[OutboxStatus] = mapped_column(
        _state(OutboxStatus), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    message: Mapped[Message | None] = relationship()


class DemandFormStatus(StrEnum):
    """State of one 附件1 demand form received from a unit."""

    ACCEPTED = "accepted"
    SUPERSEDED = "superseded"


class DemandFormRecord(Base):
    """One 附件1 demand form (活动需求征集表) read from one attachment.

    A unit has at most one accepted demand form: a newer one marks the older ``superseded`` and
    points it at its successor through ``superseded_by_id``. The form has no week.
    """

    __tablename__ = "demand_forms"
    __table_args__ = (
        UniqueConstraint("unit_id", "file_sha256", "source", name="uq_demand_forms_file"),
        Index(
            "uq_demand_forms_accepted",
            "unit_id",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
            sqlite_where=text("status = 'accepted'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    status: Mapped[DemandFormStatus] = mapped_column(_state(DemandFormStatus))
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    unit_text: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("demand_forms.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    message: Mapped[Message] = relationship()
    unit: Mapped[Unit] = relationship(lazy="joined")
    rows: Mapped[list[DemandRowRecord]] = relationship(
        order_by="DemandRowRecord.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class DemandRowRecord(Base):
    """One requested activity of a stored demand form, each cell's text as written ("" if blank).

    ``position`` counts the form's filled rows from 0; ``ref`` locates the row in the file.
    """

    __tablename__ = "demand_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_form_id: Mapped[int] = mapped_column(
        ForeignKey("demand_forms.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    experts: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[str] = mapped_column(Text, default="")
    place_mode: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    resources: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str] = mapped_column(String(200))


class BouncingAddress(Base):
    """An address that mail bounced from, as delivery status notifications reported it.

    ``address`` is the lower-case addr-spec, ``reason`` the status and diagnostic recorded last,
    and ``count`` the number of bounces recorded.
    """

    __tablename__ = "bouncing_addresses"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)


class FindingExplanation(Base):
    """The admin's mark that a 核实性 finding (``code`` C1, C2 or C3) of a report was explained."""

    __tablename__ = "finding_explanations"
    __table_args__ = (UniqueConstraint("submission_id", "code", name="uq_finding_explanations"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text)
    explained_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class SummaryMaterial(Base):
    """总结材料 a unit sent in one mail: the files, kept in the archived mail, and download links.

    ``files`` lists ``{"name", "size", "sha256"}`` of each attached file; ``links`` the download
    addresses of large attachments that 163 and QQ Mail send as links, which expire.
    """

    __tablename__ = "summary_materials"
    __table_args__ = (UniqueConstraint("message_id", "unit_id", name="uq_summary_materials_message"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    files: Mapped[list[dict[str, str | int]]] = mapped_column(JSON)
    links: Mapped[list[str]] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    message: Mapped[Message] = relationship()
    unit: Mapped[Unit] = relationship(lazy="joined")


class MailboxLease(Base):
    """The process that may run intake on ``mailbox`` until ``expires_at``.

    ``holder`` names the process (host, pid and a random part). Another process takes the lease
    only once it has expired, so two service processes never read the same mailbox at once.
    """

    __tablename__ = "mailbox_leases"

    mailbox: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())


class IntakeRun(Base):
    """One intake cycle over a mailbox folder, for ``zhoubao health`` and the admin's alerts.

    ``finished_at`` stays NULL while the run is going on, and for good when the process died
    during it. ``error`` is a one-line description with every configured secret removed.
    """

    __tablename__ = "intake_runs"
    __table_args__ = (Index("ix_intake_runs_mailbox_started", "mailbox", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    seen: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    moved: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
