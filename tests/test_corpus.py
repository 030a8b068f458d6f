"""The corpus: every kind of file, container, mail shape and layout a township may send.

Each case builds real bytes (a mail as a client sends it, carrying real .xlsx, .docx, .xls, .doc,
.csv, .html or .zip bytes) and states what the pipeline must make of it: the reports it stores,
with unit, week, violated rules and chosen values, or the reason its reply gives.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from ingest.calendar import Campaign
from ingest.convert import LibreOfficeConverter
from ingest.message import parse_message
from ingest.pipeline import Context, Decision, decide
from ingest.units import UnitDirectory, UnitSettings
from service.samples.mails import (
    MailStyle,
    ZipNames,
    build_mail,
    build_mail_with_files,
    build_single_part_mail,
    build_zip,
    encoded_word,
    mail_with_part,
)
from service.samples.tables import (
    SAMPLE_ROWS,
    Form,
    HeaderStyle,
    Layout,
    Numbering,
    WordWrapping,
    build_demand_docx,
    build_docx,
    build_workbook,
    build_xlsx,
)
from store.models import MessageOutcome
from tests.fixtures.archives import empty_7z, empty_rar5
from tests.fixtures.office import convert_files, encrypt_xls

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = Campaign(
    first_deadline=dt.datetime(2023, 12, 8, 18, 0, tzinfo=SHANGHAI),
    last_deadline=dt.datetime(2024, 3, 15, 18, 0, tzinfo=SHANGHAI),
    timezone=SHANGHAI,
)
UNITS = UnitDirectory([
    UnitSettings("水定镇", (), ("shuiding_kx@163.com",)),
    UnitSettings("清水河镇", (), ("qingshuihe_kx@163.com",)),
    UnitSettings("三道河乡", (), ("sandaohe_kx@163.com",)),
])
RECEIVED = dt.datetime(2023, 12, 22, 16, 0, tzinfo=SHANGHAI)

VALID = SAMPLE_ROWS["valid"]
XLSX = build_xlsx([VALID])
DOCX = build_docx([VALID])
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(400)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@dataclass(frozen=True)
class Expected:
    """What one corpus case must end in.

    ``reports`` lists (unit, week, violated rule ids) of the reports stored, in order. ``values``
    maps column numbers to the values of the first report's first row. ``reason`` is a phrase of
    the reply to an unreadable mail.
    """

    outcome: MessageOutcome
    reports: list[tuple[str, int, list[str]]] = field(default_factory=list)
    values: dict[int, int] = field(default_factory=dict)
    reason: str = ""
    demand_rows: int = 0
    ignored: list[str] = field(default_factory=list)


ACCEPTED_W3 = Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])])


def attach(data: bytes, name: str, subject: str = "水定镇第3周科技之冬周统计表") -> bytes:
    return build_mail_with_files([(name, data)], subject=subject)


def workbook_with_formulas(total_formula: str) -> bytes:
    """A table whose 6栏 is a formula saved without a cached value, as scripts write files."""
    workbook = openpyxl.load_workbook(io.BytesIO(XLSX))
    sheet = workbook.active
    sheet["E8"] = total_formula
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_of(*members: tuple[str, bytes], names: ZipNames = ZipNames.UTF8) -> bytes:
    return build_zip(list(members), names=names)


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("统计表.xlsx", bytes(50 * 1024 * 1024))
    return buffer.getvalue()


def text_values_row() -> list[object]:
    row: list[object] = list(VALID)
    row[2] = "46场"
    row[3] = "2,385人次"
    row[4] = "１５"
    row[11] = " 2 "
    return row


def nested_mail(depth: int) -> bytes:
    raw = attach(XLSX, "水定镇.xlsx")
    for _ in range(depth):
        raw = build_mail_with_files(forwarded=[raw], subject="转发：水定镇第3周统计表")
    return raw


def gbk_raw_name_mail() -> bytes:
    name = "水定镇第3周统计表.xlsx".encode("gbk")
    headers = [b'Content-Type: application/octet-stream; name="' + name + b'"',
               b'Content-Disposition: attachment; filename="' + name + b'"']
    return mail_with_part(headers, XLSX, subject=encoded_word("水定镇第3周科技之冬周统计表", "UTF-8"))


def split_word_name_mail() -> bytes:
    # One RFC 2047 word ends inside the three bytes of 镇; the decoder must join the bytes first.
    encoded = "水定镇第3周.xlsx".encode("utf-8")
    first, second = encoded[:4], encoded[4:]
    name = f"{encoded_word(first, 'UTF-8')} {encoded_word(second, 'UTF-8')}"
    headers = [f'Content-Type: application/octet-stream; name="{name}"',
               "Content-Disposition: attachment"]
    return mail_with_part(headers, XLSX, subject=encoded_word("水定镇第3周科技之冬周统计表", "UTF-8"))


def html_table(rows: list[tuple]) -> str:
    """The form as an HTML table, as a clerk pastes it from Excel into the mail."""
    numbers = "".join(f"<td>{column}</td>" for column in range(2, 21))
    body = "".join("<tr>" + "".join(f"<td>{value}</td>" for value in row) + "<td></td></tr>" for row in rows)
    return ("<p>填报乡镇（单位）：水定镇 填报人：李明 联系电话：138****0001 填报时间：2023年12月22日</p>"
            "<table border=1><tr><td colspan=2>活动覆盖区域</td><td colspan=17>活动数量及参与人数</td>"
            "<td rowspan=2>备注</td></tr><tr><td>乡镇（个）</td><td>村（个）</td><td>累计场次</td><td>累计人次</td>"
            "<td>本周合计场次</td><td>本周合计人次</td><td>其中：科技人员参与人数</td>"
            + "".join(f"<td>{name}场次</td><td>{name}人次</td>" for name in
                      ("开展政策宣讲", "农牧民职业技能培训", "防灾减灾科普宣传", "食品安全科普宣传",
                       "卫生健康科普宣传", "其他活动"))
            + f"</tr><tr>{numbers}<td></td></tr>{body}</table>")


def csv_text() -> str:
    lines = ["填报乡镇（单位）：水定镇,,,填报人：李明,,,联系电话：138****0001,,,填报时间：2023年12月22日",
             ",".join(["乡镇（个）", "村（个）", "累计场次", "累计人次", "本周合计场次", "本周合计人次",
                       "其中：科技人员参与人数"] + [f"{name}{kind}" for name in
                      ("开展政策宣讲", "农牧民职业技能培训", "防灾减灾科普宣传", "食品安全科普宣传",
                       "卫生健康科普宣传", "其他活动") for kind in ("场次", "人次")] + ["备注"]),
             ",".join(str(column) for column in range(2, 21)),
             ",".join(str(value) for value in VALID)]
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture(scope="module")
def legacy(soffice, tmp_path_factory) -> dict[str, bytes]:
    """Excel 97 and Word 97 files saved by LibreOffice from the builders' tables."""
    work = tmp_path_factory.mktemp("corpus-legacy")
    xls = convert_files(soffice, work / "xls", {"valid.xlsx": XLSX,
                                                 "r1.xlsx": build_xlsx([SAMPLE_ROWS["r1_broken"]])}, "xls")
    doc = convert_files(soffice, work / "doc", {"valid.docx": DOCX}, "doc")
    return {"xls": xls["valid"], "xls_r1": xls["r1"], "doc": doc["valid"]}


@pytest.fixture(scope="module")
def converter(soffice) -> LibreOfficeConverter:
    return LibreOfficeConverter(soffice)


def run(raw: bytes, convert=None) -> Decision:
    context = Context(units=UNITS, campaign=CAMPAIGN, own_addresses=frozenset({"hckexie-county@example.test"}),
                      received_at=RECEIVED, convert=convert)
    return decide(parse_message(raw), context)


# (case id, mail bytes, expected). Cases that need LibreOffice-made files are in LEGACY_CASES.
CASES = [
    # Files
    ("xlsx", lambda: attach(XLSX, "水定镇.xlsx"), ACCEPTED_W3),
    ("xlsx numbers as text", lambda: attach(build_xlsx([VALID], as_text=True), "水定镇.xlsx"), ACCEPTED_W3),
    ("xlsx R1", lambda: attach(build_xlsx([SAMPLE_ROWS["r1_broken"]]), "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["R1"])])),
    ("xlsx R2 R5", lambda: attach(build_xlsx([SAMPLE_ROWS["r2_r5_broken"]]), "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["R2", "R5"])])),
    ("xlsx R3 R4", lambda: attach(build_xlsx([SAMPLE_ROWS["r3_r4_broken"]]), "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["R3", "R4"])])),
    ("xlsx blanks are zero", lambda: attach(build_xlsx([SAMPLE_ROWS["blanks"]]), "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={15: 0, 16: 0})),
    ("docx", lambda: attach(DOCX, "水定镇.docx"), ACCEPTED_W3),
    ("docx R1", lambda: attach(build_docx([SAMPLE_ROWS["r1_broken"]]), "水定镇.docx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["R1"])])),
    ("xlsm name", lambda: attach(XLSX, "水定镇.xlsm"), ACCEPTED_W3),
    ("xlsx named xls", lambda: attach(XLSX, "水定镇.xls"), ACCEPTED_W3),
    ("csv utf-8", lambda: attach(csv_text().encode("utf-8-sig"), "水定镇.csv"), ACCEPTED_W3),
    ("csv gb18030", lambda: attach(csv_text().encode("gb18030"), "水定镇.csv"), ACCEPTED_W3),
    ("html file", lambda: attach(html_table([VALID]).encode("utf-8"), "水定镇.html"), ACCEPTED_W3),
    ("html body", lambda: build_mail_with_files(html=html_table([VALID])), ACCEPTED_W3),
    ("tab-separated body", lambda: build_mail_with_files(body=csv_text().replace(",", "\t")), ACCEPTED_W3),
    ("formula without cache", lambda: attach(workbook_with_formulas("=H8+J8+L8+N8+P8+R8"), "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={6: 15})),
    ("formula sum without cache", lambda: attach(workbook_with_formulas("=SUM(H8,J8,L8,N8,P8,R8)"), "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={6: 15})),
    ("formula not computable", lambda: attach(workbook_with_formulas("=VLOOKUP(A8,B8:C9,2,0)"), "水定镇.xlsx"),
     Expected(MessageOutcome.UNREADABLE, reason="保存一次")),
    ("pdf", lambda: attach(PDF, "统计表.pdf"), Expected(MessageOutcome.UNREADABLE, reason="PDF")),
    ("photo", lambda: attach(JPEG, "IMG_2023.jpg"), Expected(MessageOutcome.UNREADABLE, reason="图片")),
    ("doc without LibreOffice", lambda: attach(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), "水定镇.doc"),
     Expected(MessageOutcome.UNREADABLE, reason=".docx")),
    # Containers and mail shapes
    ("zip utf-8", lambda: attach(zip_of(("水定镇第3周.xlsx", XLSX)), "统计表.zip"), ACCEPTED_W3),
    ("zip gbk names", lambda: attach(zip_of(("水定镇第3周.xlsx", XLSX), names=ZipNames.GBK), "统计表.zip"),
     ACCEPTED_W3),
    ("nested zip", lambda: attach(zip_of(("内层.zip", zip_of(("水定镇.docx", DOCX)))), "统计表.zip"), ACCEPTED_W3),
    ("rar", lambda: attach(empty_rar5(), "统计表.rar"), Expected(MessageOutcome.UNREADABLE, reason="zip")),
    ("7z", lambda: attach(empty_7z(), "统计表.7z"), Expected(MessageOutcome.UNREADABLE, reason="zip")),
    ("zip bomb", lambda: attach(zip_bomb(), "统计表.zip"), Expected(MessageOutcome.UNREADABLE, reason="压缩")),
    ("forwarded mail", lambda: build_mail_with_files(forwarded=[attach(XLSX, "水定镇.xlsx")],
                                                     subject="转发：水定镇第3周统计表"), ACCEPTED_W3),
    ("attached eml", lambda: build_mail_with_files([("原邮件.eml", attach(DOCX, "水定镇.docx"))]), ACCEPTED_W3),
    ("mail nested too deep", lambda: nested_mail(8), Expected(MessageOutcome.UNREADABLE, reason="层")),
    ("single-part mail", lambda: build_single_part_mail(XLSX, "水定镇.xlsx"), ACCEPTED_W3),
    ("single-part without name", lambda: build_single_part_mail(XLSX, None,
                                                                content_type="application/octet-stream"),
     ACCEPTED_W3),
    ("photo beside the table", lambda: build_mail_with_files([("水定镇.xlsx", XLSX), ("活动照片.jpg", JPEG)]),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], ignored=["活动照片.jpg"])),
    ("two weeks in two files", lambda: build_mail_with_files(
        [("水定镇第3周.xlsx", XLSX),
         ("水定镇第4周.xlsx", build_xlsx([VALID], date_text="2023年12月29日"))], subject="水定镇统计表"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, []), ("水定镇", 4, [])])),
    ("raw gbk file name", gbk_raw_name_mail, ACCEPTED_W3),
    ("encoded word split in a character", split_word_name_mail, ACCEPTED_W3),
    ("outlook name only in content-type", lambda: build_mail(MailStyle.OUTLOOK_EXPRESS, attachment=XLSX,
                                                             filename="水定镇.xlsx"), ACCEPTED_W3),
    ("phone octet-stream", lambda: build_mail(MailStyle.ANDROID, attachment=DOCX, filename="水定镇.docx"),
     ACCEPTED_W3),
    # Layouts
    ("extra columns", lambda: attach(build_xlsx([VALID], layout=Layout(leading=("序号", "填报单位"),
                                                                        trailing=("联系人",))), "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={2: 1, 20: 56})),
    ("numbered from one", lambda: attach(build_xlsx([VALID], layout=Layout(numbering=Numbering.FROM_ONE)),
                                         "水定镇.xlsx"), ACCEPTED_W3),
    ("no numbering row", lambda: attach(build_xlsx([VALID], layout=Layout(numbering=Numbering.NONE,
                                                                          header=HeaderStyle.FLAT)),
                                        "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={4: 46, 20: 56})),
    ("total row checked", lambda: attach(build_xlsx([VALID, VALID], layout=Layout(total=True)), "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={6: 15})),
    ("total row wrong", lambda: attach(build_xlsx([VALID, VALID], layout=Layout(total=[2] * 19)), "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["T1"])])),
    ("notice above, table far right", lambda: attach(build_xlsx(
        [VALID], layout=Layout(notice=("关于报送科技之冬周统计表的通知", "请各乡镇认真填写"), origin=(5, 4))),
        "水定镇.xlsx"), ACCEPTED_W3),
    ("two week sheets", lambda: attach(build_workbook({
        "第2周": [Form([VALID], date_text="2023年12月15日")],
        "第3周": [Form([VALID])]}), "水定镇统计表.xlsx", subject="水定镇统计表"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 2, []), ("水定镇", 3, [])])),
    ("word with layout tables", lambda: attach(build_docx([VALID], wrapping=WordWrapping.LAYOUT_TABLES),
                                               "水定镇.docx"), ACCEPTED_W3),
    ("word table nested in a cell", lambda: attach(build_docx([VALID], wrapping=WordWrapping.NESTED),
                                                   "水定镇.docx"), ACCEPTED_W3),
    ("values written as text", lambda: attach(build_xlsx([text_values_row()]), "水定镇.xlsx"),
     Expected(MessageOutcome.ACCEPTED, [("水定镇", 3, [])], values={4: 46, 5: 2385, 6: 15})),
    ("dash and 无 for zero", lambda: attach(build_xlsx([[*VALID[:13], "/", "无", *VALID[15:]]]),
                                            "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["R1", "R2"])], values={15: 0, 16: 0})),
    ("negative number", lambda: attach(build_xlsx([[*VALID[:7], -4, *VALID[8:]]]), "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["V1"])])),
    ("fraction", lambda: attach(build_xlsx([[*VALID[:7], 4.5, *VALID[8:]]]), "水定镇.xlsx"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["V1"])])),
    # The demand form
    ("demand form", lambda: attach(build_demand_docx([("农业专家2名", "果农", "12月", "线下", "林果修剪", "挂图")]),
                                   "水定镇需求征集表.docx", subject="水定镇科技之冬活动需求征集表"),
     Expected(MessageOutcome.ACCEPTED, demand_rows=1)),
    ("blank demand form", lambda: attach(build_demand_docx([]), "需求征集表.docx", subject="需求征集表"),
     Expected(MessageOutcome.UNREADABLE, reason="空白")),
]

LEGACY_CASES = [
    ("xls", lambda files: attach(files["xls"], "水定镇.xls"), ACCEPTED_W3),
    ("xls R1", lambda files: attach(files["xls_r1"], "水定镇.xls"),
     Expected(MessageOutcome.REJECTED, [("水定镇", 3, ["R1"])])),
    ("xls named xlsx", lambda files: attach(files["xls"], "水定镇.xlsx"), ACCEPTED_W3),
    ("et", lambda files: attach(files["xls"], "水定镇.et"), ACCEPTED_W3),
    ("doc", lambda files: attach(files["doc"], "水定镇.doc"), ACCEPTED_W3),
    ("wps", lambda files: attach(files["doc"], "水定镇.wps"), ACCEPTED_W3),
    ("encrypted xls", lambda files: attach(encrypt_xls(files["xls"]), "水定镇.xls"),
     Expected(MessageOutcome.UNREADABLE, reason="密码")),
]


def check(decision: Decision, expected: Expected) -> None:
    assert decision.outcome == expected.outcome, decision.problems
    reports = [(plan.unit, plan.week, [str(v.rule) for v in plan.report.violations]) for plan in decision.reports]
    assert [(unit, week, sorted(set(rules))) for unit, week, rules in reports] == expected.reports
    if expected.values:
        first = decision.reports[0].report.values[0]
        assert {column: first[column] for column in expected.values} == expected.values
    if expected.reason:
        assert any(expected.reason in problem.reason for problem in decision.problems), decision.problems
    assert sum(len(plan.form.rows) for plan in decision.demand_forms) == expected.demand_rows
    if expected.ignored:
        assert decision.ignored_files == expected.ignored


def test_corpus_size():
    assert len(CASES) + len(LEGACY_CASES) >= 40


@pytest.mark.parametrize(("build", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_corpus_case(build, expected):
    check(run(build()), expected)


@pytest.mark.parametrize(("build", "expected"), [case[1:] for case in LEGACY_CASES],
                         ids=[case[0] for case in LEGACY_CASES])
def test_corpus_legacy_case(legacy, converter, build, expected):
    check(run(build(legacy), converter.convert), expected)


def test_corpus_encrypted_zip(encrypted_zip):
    check(run(attach(encrypted_zip, "统计表.zip")), Expected(MessageOutcome.UNREADABLE, reason="密码"))
