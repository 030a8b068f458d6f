"""The 附件1 demand form: finding it in files, storing it per unit, migrating to it, the receipt.

Forms are real .docx and .xlsx bytes read through the readers. Storage tests run on SQLite and,
when reachable, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import openpyxl
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from docx import Document
from sqlalchemy.exc import IntegrityError

from ingest.demand import DemandForm, DemandRow, locate_demand_forms
from ingest.errors import TableNotFound
from ingest.locate import locate_tables
from ingest.readers import read_grids
from ingest.table import Cell, Grid
from notify.notices import BRIEF_LENGTH, DemandReceiptNotice, NoticeKind
from notify.render import render_notice
from service.samples.tables import SAMPLE_ROWS, build_demand_docx, build_docx, build_xlsx
from store import repository
from store.models import (
    DemandFormRecord,
    DemandFormStatus,
    DemandRowRecord,
    Message,
    Unit,
)
from store.session import MIGRATIONS, Database

UTC = dt.timezone.utc
BEIJING = dt.timezone(dt.timedelta(hours=8))
RECEIVED = dt.datetime(2023, 12, 8, 16, 5, tzinfo=BEIJING)

ORCHARD = ("林果专家2名", "果农", "12月下旬", "线下，村委会会议室", "果树冬季修剪与病虫害防治", "修剪技术视频")
CATTLE = ("畜牧兽医1名", "养殖户", "2024年1月", "线上线下相结合", "牛羊冬季疫病防控", "防疫宣传手册")
HEALTH = ("医生1名", "老年人", "1月中旬", "线下", "冬季常见病预防\n高血压日常管理", "")


def demand_grids(rows=(ORCHARD, CATTLE), **fields) -> list[Grid]:
    return read_grids(build_demand_docx(rows, **fields), "docx")


def only_form(grids: list[Grid]) -> DemandForm:
    forms = locate_demand_forms(grids)
    assert len(forms) == 1
    return forms[0]


def xlsx_bytes(rows: list[list[object]], start_column: int = 1) -> bytes:
    """Return a workbook whose first sheet has ``rows`` from row 1, starting at ``start_column``."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for number, values in enumerate(rows, start=1):
        for offset, value in enumerate(values):
            sheet.cell(row=number, column=start_column + offset, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- locating the form ---------------------------------------------------------------------------


def test_demand_docx_rows_read():
    form = only_form(demand_grids())

    assert [row.content for row in form.rows] == ["果树冬季修剪与病虫害防治", "牛羊冬季疫病防控"]


def test_demand_docx_row_fields():
    row = only_form(demand_grids()).rows[0]

    assert row == DemandRow(
        index=1,
        experts="林果专家2名",
        audience="果农",
        time="12月下旬",
        place_mode="线下，村委会会议室",
        content="果树冬季修剪与病虫害防治",
        resources="修剪技术视频",
        ref="表格1第2行",
    )


def test_demand_docx_fill_line():
    form = only_form(demand_grids(unit="清水河镇", contact="王芳", phone="139****0002"))

    assert (form.unit_text, form.contact, form.phone) == ("清水河镇", "王芳", "139****0002")


def test_demand_source_is_grid_name():
    assert only_form(demand_grids()).source == "表格1"


def test_demand_multiline_cell_kept():
    row = only_form(demand_grids(rows=[HEALTH])).rows[0]

    assert row.content == "冬季常见病预防\n高血压日常管理"


def test_demand_blank_resources_empty_text():
    assert only_form(demand_grids(rows=[HEALTH])).rows[0].resources == ""


def test_demand_template_rows_skipped():
    # GIVEN the form's 7 numbered rows and the "……" row, of which only rows 1 and 3 are filled
    form = only_form(demand_grids(rows=[ORCHARD, ("",) * 6, CATTLE]))

    # THEN the rows with only a 序号 are not activities, and the filled ones count from 1
    assert [row.index for row in form.rows] == [1, 2]
    assert [row.ref for row in form.rows] == ["表格1第2行", "表格1第4行"]


def test_demand_blank_form_no_rows():
    form = only_form(demand_grids(rows=[], unit="", contact="", phone=""))

    assert form.rows == []


def test_demand_blank_form_no_unit():
    form = only_form(demand_grids(rows=[], unit="", contact="", phone=""))

    assert (form.unit_text, form.contact, form.phone) == (None, None, None)


def test_demand_note_not_unit():
    # The form's own note "说明：填表单位为各乡镇（中心）。" names the label without a value.
    form = only_form(demand_grids(rows=[ORCHARD], unit=""))

    assert form.unit_text is None


def test_demand_xlsx_anywhere_in_sheet():
    # GIVEN a clerk's Excel retype: title, the 填表单位 line split over cells, table from column C
    data = xlsx_bytes([
        ["2023-2024年“科技之冬”活动需求征集表"],
        ["填表单位：", "芦草沟镇", None, "联系人：马晓东", None, "联系电话：137****0003"],
        [],
        ["序号", "活动所需专家（专家数量及专业）", "活动针对人群", "活动时间",
         "活动地点及方式（线上、线下或相结合）", "活动内容", "所需科普资源（包括图书、视频等资料）"],
        [1, "农技专家1名", "种植户", dt.datetime(2023, 12, 26), "线下", "设施农业冬季管理", "挂图"],
        [2.0, None, None, None, None, None, None],
    ], start_column=3)

    form = only_form(read_grids(data, "xlsx"))

    assert (form.unit_text, form.contact, form.phone) == ("芦草沟镇", "马晓东", "137****0003")
    assert [row.content for row in form.rows] == ["设施农业冬季管理"]


def test_demand_xlsx_date_cell_as_text():
    data = xlsx_bytes([
        ["序号", "活动所需专家", "活动针对人群", "活动时间", "活动地点及方式", "活动内容", "所需科普资源"],
        [1, "农技专家1名", "种植户", dt.datetime(2023, 12, 26), "线下", "设施农业冬季管理", 3.0],
    ])

    row = only_form(read_grids(data, "xlsx")).rows[0]

    assert row.time == "2023年12月26日"
    assert row.resources == "3"


def test_demand_retyped_header_reordered():
    # GIVEN short header words in another order and an extra 备注 column
    data = xlsx_bytes([
        ["内容", "专家", "对象", "时间", "地点", "资料", "备注"],
        ["葡萄埋土防寒", "林果专家1名", "果农", "12月", "田间", "明白纸", "急需"],
    ])

    row = only_form(read_grids(data, "xlsx")).rows[0]

    assert (row.content, row.experts, row.audience, row.resources) == (
        "葡萄埋土防寒", "林果专家1名", "果农", "明白纸")


def test_demand_rows_end_at_note():
    data = xlsx_bytes([
        ["序号", "活动所需专家", "活动针对人群", "活动时间", "活动地点及方式", "活动内容", "所需科普资源"],
        [1, "农技专家1名", "种植户", "12月", "线下", "设施农业冬季管理", "挂图"],
        ["说明：填表单位为各乡镇（中心）。"],
        ["填表单位：水定镇"],
    ])

    form = only_form(read_grids(data, "xlsx"))

    assert len(form.rows) == 1
    assert form.unit_text == "水定镇"


def test_demand_among_other_tables():
    # GIVEN a Word file with a letterhead table before the form
    document = Document(io.BytesIO(build_demand_docx([ORCHARD])))
    letterhead = document.add_table(rows=1, cols=2)
    letterhead.cell(0, 0).text = "霍城县科学技术协会"
    letterhead.cell(0, 1).text = "2023年12月6日"
    document.element.body.insert(0, letterhead._tbl)
    buffer = io.BytesIO()
    document.save(buffer)

    form = only_form(read_grids(buffer.getvalue(), "docx"))

    assert form.source == "表格2"
    assert [row.content for row in form.rows] == ["果树冬季修剪与病虫害防治"]


def test_demand_two_forms_in_one_sheet():
    header = ["序号", "活动所需专家", "活动针对人群", "活动时间", "活动地点及方式", "活动内容", "所需科普资源"]
    data = xlsx_bytes([
        header,
        [1, "农技专家1名", "种植户", "12月", "线下", "设施农业冬季管理", "挂图"],
        header,
        [1, "医生1名", "老年人", "1月", "线下", "冬季常见病预防", ""],
    ])

    forms = locate_demand_forms(read_grids(data, "xlsx"))

    assert [[row.content for row in form.rows] for form in forms] == [
        ["设施农业冬季管理"], ["冬季常见病预防"]]


def test_sentence_with_header_words_not_header():
    # A clerk's sentences mention 专家, 人群, 时间, 地点 and 内容 but are no header row.
    sentences = ["请专家讲解冬季果树管理的主要内容", "针对的人群是全村果农和合作社社员",
                 "时间定在十二月下旬的周末上午", "地点在村委会会议室或者田间地头"]
    grid = Grid("Sheet1", [[Cell(text, f"Sheet1!A{n}") for n, text in enumerate(sentences, 1)]])

    assert locate_demand_forms([grid]) == []


@pytest.mark.parametrize("kind, build", [("xlsx", build_xlsx), ("docx", build_docx)])
def test_weekly_table_not_demand(kind, build):
    grids = read_grids(build([SAMPLE_ROWS["valid"]]), kind)

    assert locate_demand_forms(grids) == []


def test_weekly_locator_rejects_demand():
    with pytest.raises(TableNotFound):
        locate_tables(demand_grids())


# --- storage -------------------------------------------------------------------------------------


def make_form(rows=(ORCHARD, CATTLE)) -> DemandForm:
    return only_form(demand_grids(rows))


def archive(session, uid: int = 1) -> Message:
    raw = f"Message-ID: <d{uid}@example.test>\r\nSubject: 附件1\r\n\r\n需求表\r\n".encode()
    return repository.archive_message(
        session, mailbox="INBOX", uid_validity=100, uid=uid, raw=raw, internal_date=RECEIVED,
        received_at=RECEIVED, message_id_header=f"<d{uid}@example.test>",
        sender="shuiding_kx@163.com", subject="附件1",
    )


def record(session, unit, *, uid=1, form=None, file_sha256="a" * 64, received_at=RECEIVED):
    return repository.record_demand_form(
        session, message=archive(session, uid), unit=unit, file_name="水定镇需求征集表.docx",
        file_sha256=file_sha256, form=form or make_form(), received_at=received_at,
    )


@pytest.fixture
def units(database) -> dict[str, Unit]:
    with database.session() as session:
        return repository.sync_units(session, [("水定镇", []), ("清水河镇", [])])


def test_demand_form_recorded(database, units):
    with database.session() as session:
        stored, duplicate = record(session, units["水定镇"])

    assert duplicate is False
    assert stored.status is DemandFormStatus.ACCEPTED


def test_demand_rows_stored(database, units):
    with database.session() as session:
        stored, _ = record(session, units["水定镇"])

    with database.session() as session:
        rows = session.get(DemandFormRecord, stored.id).rows
        assert [row.content for row in rows] == ["果树冬季修剪与病虫害防治", "牛羊冬季疫病防控"]
        assert [row.position for row in rows] == [0, 1]
        assert rows[0].time == "12月下旬"
        assert rows[0].ref == "表格1第2行"


def test_demand_fill_line_stored(database, units):
    with database.session() as session:
        stored, _ = record(session, units["水定镇"])

    with database.session() as session:
        loaded = session.get(DemandFormRecord, stored.id)
        assert (loaded.unit_text, loaded.contact, loaded.phone) == ("水定镇", "李明", "138****0001")
        assert loaded.received_at == RECEIVED


def test_demand_same_file_duplicate(database, units):
    with database.session() as session:
        first, _ = record(session, units["水定镇"], uid=1)
    with database.session() as session:
        again, duplicate = record(session, units["水定镇"], uid=2)

    assert duplicate is True
    assert again.id == first.id
    with database.session() as session:
        assert len(repository.list_demand_forms(session)) == 1


def test_demand_newer_supersedes_older(database, units):
    with database.session() as session:
        old, _ = record(session, units["水定镇"], uid=1, file_sha256="a" * 64)
    with database.session() as session:
        new, _ = record(session, units["水定镇"], uid=2, file_sha256="b" * 64,
                        received_at=RECEIVED + dt.timedelta(days=1))

    with database.session() as session:
        stored_old = session.get(DemandFormRecord, old.id)
        assert stored_old.status is DemandFormStatus.SUPERSEDED
        assert stored_old.superseded_by_id == new.id
        assert session.get(DemandFormRecord, new.id).status is DemandFormStatus.ACCEPTED


def test_demand_replaced_form_found(database, units):
    with database.session() as session:
        old, _ = record(session, units["水定镇"], uid=1, file_sha256="a" * 64)
        new, _ = record(session, units["水定镇"], uid=2, file_sha256="b" * 64,
                        received_at=RECEIVED + dt.timedelta(days=1))

        assert repository.replaced_demand_form(session, new).id == old.id
        assert repository.replaced_demand_form(session, old) is None


def test_demand_replaced_ignores_late_older(database, units):
    # GIVEN form A, then form C replacing it, then form B (received between them) recorded last
    with database.session() as session:
        first, _ = record(session, units["水定镇"], uid=1, file_sha256="a" * 64)
        last, _ = record(session, units["水定镇"], uid=3, file_sha256="c" * 64,
                         received_at=RECEIVED + dt.timedelta(days=2))
        record(session, units["水定镇"], uid=2, file_sha256="b" * 64,
               received_at=RECEIVED + dt.timedelta(days=1))

        # THEN C replaced A, not B
        assert repository.replaced_demand_form(session, last).id == first.id


def test_demand_older_recorded_later(database, units):
    # GIVEN the unit's second form was processed first
    with database.session() as session:
        newer, _ = record(session, units["水定镇"], uid=2, file_sha256="b" * 64,
                          received_at=RECEIVED + dt.timedelta(days=1))
        # WHEN the first form is recorded after it
        older, _ = record(session, units["水定镇"], uid=1, file_sha256="a" * 64)

    # THEN the form received later stays the accepted one
    assert older.status is DemandFormStatus.SUPERSEDED
    assert older.superseded_by_id == newer.id
    assert newer.status is DemandFormStatus.ACCEPTED


def test_demand_units_kept_apart(database, units):
    with database.session() as session:
        first, _ = record(session, units["水定镇"], uid=1)
        second, duplicate = record(session, units["清水河镇"], uid=2)

    assert duplicate is False
    assert first.status is DemandFormStatus.ACCEPTED
    assert second.status is DemandFormStatus.ACCEPTED


def test_demand_blank_form_stored(database, units):
    with database.session() as session:
        stored, _ = record(session, units["水定镇"], form=make_form(rows=()))

    with database.session() as session:
        assert session.get(DemandFormRecord, stored.id).rows == []


def test_two_accepted_demand_forms_rejected(database, units):
    # The partial unique index, not only record_demand_form, keeps one accepted form per unit.
    with database.session() as session:
        stored, _ = record(session, units["水定镇"])
    copy = dict(message_id=stored.message_id, unit_id=stored.unit_id, status="accepted",
                file_name="x.docx", file_sha256="c" * 64, source="表格1",
                received_at=RECEIVED, created_at=RECEIVED)

    with pytest.raises(IntegrityError), database.session() as session:
        session.add(DemandFormRecord(**copy))
        session.flush()


def test_list_demand_forms_order(database, units):
    with database.session() as session:
        record(session, units["水定镇"], uid=1)
        record(session, units["清水河镇"], uid=2)

    with database.session() as session:
        names = [form.unit.name for form in repository.list_demand_forms(session)]
    assert names == sorted(["水定镇", "清水河镇"])


# --- migration 0002 ------------------------------------------------------------------------------


def migrate(database: Database, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)


# Lightweight table clauses with the 0001 column types, so the rows are written as 0001 had
# them however the models change later.
def _table(table_name: str, /, **columns) -> sa.TableClause:
    return sa.table(table_name, *(sa.column(column, type_) for column, type_ in columns.items()))


_STAMP = sa.DateTime(timezone=True)
UNITS_0001 = _table("units", id=sa.Integer(), name=sa.String(), aliases=sa.JSON(),
                    created_at=_STAMP)
MESSAGES_0001 = _table(
    "messages", id=sa.Integer(), mailbox=sa.String(), uid_validity=sa.Integer(),
    uid=sa.Integer(), message_id_header=sa.Text(), message_key=sa.String(), sha256=sa.String(),
    raw=sa.LargeBinary(), size=sa.Integer(), internal_date=_STAMP, sender=sa.String(),
    subject=sa.Text(), outcome=sa.String(), received_at=_STAMP,
)
SUBMISSIONS_0001 = _table(
    "submissions", id=sa.Integer(), message_id=sa.Integer(), unit_id=sa.Integer(),
    week=sa.Integer(), status=sa.String(), late=sa.Boolean(), file_name=sa.Text(),
    file_sha256=sa.String(), source=sa.String(), received_at=_STAMP, created_at=_STAMP,
)
REPORT_ROWS_0001 = _table("report_rows", id=sa.Integer(), submission_id=sa.Integer(),
                          position=sa.Integer(), c6=sa.Integer(), remark=sa.Text(), ref=sa.String())
VIOLATIONS_0001 = _table(
    "violations", id=sa.Integer(), submission_id=sa.Integer(), rule=sa.String(),
    row=sa.Integer(), cell=sa.String(), columns=sa.Text(), found=sa.JSON(), expected=sa.Text(),
)
OUTBOX_0001 = _table(
    "outbox", id=sa.Integer(), message_id=sa.Integer(), kind=sa.String(), recipient=sa.String(),
    subject=sa.Text(), mail_message_id=sa.String(), raw=sa.LargeBinary(), status=sa.String(),
    attempts=sa.Integer(), next_attempt_at=_STAMP, created_at=_STAMP,
)
RAW_MAIL = b"Message-ID: <m1@example.test>\r\nSubject: x\r\n\r\nbody\r\n"


def fill_0001(database: Database) -> None:
    """Write one row into every table of revision 0001."""
    sha = hashlib.sha256(RAW_MAIL).hexdigest()
    # The models write UTC; SQLite keeps no offset, so another zone would read back shifted.
    stamp = RECEIVED.astimezone(UTC)
    with database.engine.begin() as connection:
        connection.execute(sa.insert(UNITS_0001).values(
            id=1, name="水定镇", aliases=["水定"], created_at=stamp))
        connection.execute(sa.insert(MESSAGES_0001).values(
            id=1, mailbox="INBOX", uid_validity=100, uid=1, message_id_header="<m1@example.test>",
            message_key="<m1@example.test>", sha256=sha, raw=RAW_MAIL, size=len(RAW_MAIL),
            internal_date=stamp, sender="shuiding_kx@163.com", subject="第1周",
            outcome="accepted", received_at=stamp))
        connection.execute(sa.insert(SUBMISSIONS_0001).values(
            id=1, message_id=1, unit_id=1, week=1, status="rejected", late=False,
            file_name="附件二.xlsx", file_sha256="f" * 64, source="Sheet1",
            received_at=stamp, created_at=stamp))
        connection.execute(sa.insert(REPORT_ROWS_0001).values(
            id=1, submission_id=1, position=0, c6=15, remark="水定村", ref="Sheet1!8"))
        connection.execute(sa.insert(VIOLATIONS_0001).values(
            id=1, submission_id=1, rule="R1", row=8, cell="Sheet1!F8", columns="6,9",
            found={"6": 15}, expected="应等于9"))
        connection.execute(sa.insert(OUTBOX_0001).values(
            id=1, message_id=1, kind="receipt", recipient="shuiding_kx@163.com", subject="回执",
            mail_message_id="<r1@example.test>", raw=b"raw reply", status="pending",
            attempts=0, next_attempt_at=stamp, created_at=stamp))


@pytest.fixture
def database_0001(database_url):
    """A database at revision 0001 with one row in each of its tables."""
    db = Database(database_url)
    migrate(db, command.upgrade, "0001")
    fill_0001(db)
    yield db
    db.dispose()


def row_counts(database: Database) -> dict[str, int]:
    tables = ["units", "messages", "submissions", "report_rows", "violations", "outbox"]
    with database.engine.connect() as connection:
        return {name: connection.scalar(sa.select(sa.func.count()).select_from(sa.table(name)))
                for name in tables}


def test_upgrade_0001_values_intact(database_0001):
    database_0001.upgrade()

    with database_0001.session() as session:
        message = session.get(Message, 1)
        assert message.raw == RAW_MAIL
        assert message.received_at == RECEIVED
        assert session.get(Unit, 1).aliases == ["水定"]


def test_upgrade_0001_then_record(database_0001):
    # GIVEN a database upgraded from 0001 that already contains a unit and a mail
    database_0001.upgrade()

    # WHEN a demand form is recorded against them
    with database_0001.session() as session:
        stored, _ = repository.record_demand_form(
            session, message=session.get(Message, 1), unit=session.get(Unit, 1),
            file_name="需求表.docx", file_sha256="d" * 64, form=make_form(),
            received_at=RECEIVED)

    # THEN its rows are there
    with database_0001.session() as session:
        assert len(session.get(DemandFormRecord, stored.id).rows) == 2


def test_downgrade_0002_keeps_rows(database_0001):
    # GIVEN a database at head with a demand form
    database_0001.upgrade()
    with database_0001.session() as session:
        repository.record_demand_form(
            session, message=session.get(Message, 1), unit=session.get(Unit, 1),
            file_name="需求表.docx", file_sha256="d" * 64, form=make_form(),
            received_at=RECEIVED)

    # WHEN it goes back to 0001
    migrate(database_0001, command.downgrade, "0001")

    # THEN the demand tables are gone and the 0001 rows are kept
    assert "demand_forms" not in sa.inspect(database_0001.engine).get_table_names()
    assert row_counts(database_0001)["messages"] == 1


def test_demand_row_columns_from_migration(database):
    columns = {column["name"] for column in sa.inspect(database.engine).get_columns("demand_rows")}

    assert columns == set(DemandRowRecord.__table__.columns.keys())


# --- receipt -------------------------------------------------------------------------------------


def demand_receipt(**changes) -> DemandReceiptNotice:
    fields = dict(
        unit="水定镇",
        received_at=dt.datetime(2023, 12, 8, 8, 5, tzinfo=UTC),
        file_name="水定镇科技之冬活动需求征集表.docx",
        source="表格1",
        contact="李明",
        phone="138****0001",
        rows=only_form(demand_grids(rows=[ORCHARD, CATTLE, HEALTH])).rows,
    )
    fields.update(changes)
    return DemandReceiptNotice(**fields)


def test_demand_receipt_kind():
    assert str(demand_receipt().kind) == "demand-receipt"
    assert demand_receipt().kind is NoticeKind.DEMAND_RECEIPT


def test_demand_receipt_subject():
    assert render_notice(demand_receipt()).subject == "回执：水定镇科技之冬活动需求征集表已收到"


def test_demand_receipt_names_unit():
    assert render_notice(demand_receipt()).text.startswith("水定镇：\n")


def test_demand_receipt_counts_rows():
    text = render_notice(demand_receipt()).text

    assert "活动需求征集表（附件1）已收到并登记，共3项活动需求。" in text


def test_demand_receipt_lists_contents():
    text = render_notice(demand_receipt()).text

    assert "1. 果树冬季修剪与病虫害防治\n2. 牛羊冬季疫病防控\n3. 冬季常见病预防 高血压日常管理\n" in text


def test_demand_receipt_received_time():
    # 08:05 UTC is 16:05 in Beijing.
    assert "收到时间：2023年12月8日 16:05（北京时间）" in render_notice(demand_receipt()).text


def test_demand_receipt_newer_replaces():
    text = render_notice(demand_receipt()).text

    assert "新表将替代此前的表，以最后收到的一份为准。" in text


def test_demand_receipt_replaced_earlier():
    text = render_notice(demand_receipt(replaced=True)).text

    assert "你单位此前报送的需求征集表同时作废，以本表为准。" in text


def test_demand_receipt_first_form_no_replaced():
    assert "同时作废" not in render_notice(demand_receipt()).text


def test_demand_receipt_duplicate():
    text = render_notice(demand_receipt(duplicate=True)).text

    assert "本次发来的是同一份文件，不再重复登记，无需再次发送。" in text


def test_demand_receipt_superseded():
    text = render_notice(demand_receipt(superseded=True)).text

    assert "本表仅作存档，以后发来的为准。" in text


def test_demand_receipt_blank_form():
    text = render_notice(demand_receipt(rows=[])).text

    assert "但表中没有填写活动需求。如有需求，请填写后重新发送。" in text


def test_demand_receipt_long_content_cut():
    long_row = DemandRow(index=1, experts="", audience="", time="", place_mode="",
                         content="果" * (BRIEF_LENGTH + 10), resources="")

    assert demand_receipt(rows=[long_row]).briefs() == ["果" * BRIEF_LENGTH + "……"]


def test_demand_receipt_empty_content_named():
    row = DemandRow(index=1, experts="农技专家1名", audience="", time="", place_mode="",
                    content="", resources="")

    assert demand_receipt(rows=[row]).briefs() == ["（未填写活动内容）"]


def test_demand_receipt_html_lists_contents():
    html = render_notice(demand_receipt()).html

    assert "<td style=\"padding:6px 8px;border:1px solid #dddddd;vertical-align:top;\">牛羊冬季疫病防控</td>" in html


def test_demand_receipt_html_escapes():
    row = DemandRow(index=1, experts="", audience="", time="", place_mode="",
                    content="<b>讲座</b>", resources="")

    assert "&lt;b&gt;讲座&lt;/b&gt;" in render_notice(demand_receipt(rows=[row])).html


def test_demand_receipt_signature():
    text = render_notice(demand_receipt(), signature="霍城县科协").text

    assert text.endswith("霍城县科协\n（本邮件由系统自动发送。）\n")


# --- end to end ----------------------------------------------------------------------------------


def test_demand_file_to_receipt(database, units):
    # GIVEN the demand form as a clerk attaches it
    data = build_demand_docx([ORCHARD, CATTLE])

    # WHEN it is located, recorded and replied to
    form = only_form(read_grids(data, "docx"))
    with database.session() as session:
        stored, duplicate = repository.record_demand_form(
            session, message=archive(session), unit=units["水定镇"], file_name="需求表.docx",
            file_sha256=hashlib.sha256(data).hexdigest(), form=form, received_at=RECEIVED)
        notice = DemandReceiptNotice(
            unit=stored.unit.name, received_at=stored.received_at, file_name=stored.file_name,
            source=stored.source, contact=stored.contact, phone=stored.phone, rows=form.rows,
            replaced=repository.replaced_demand_form(session, stored) is not None,
            duplicate=duplicate)

    # THEN the receipt counts the two activities
    assert "共2项活动需求" in render_notice(notice).text
