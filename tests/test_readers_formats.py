"""Readers of .xls, CSV and HTML tables, and of .xlsx files as WPS and other programs write them.

LibreOffice makes the .xls files from the sample .xlsx builds, as a clerk's "save as Excel 97-2003"
would. Those tests skip when LibreOffice is missing, except in CI, which installs it.
"""

import csv
import datetime as dt
import io
import os
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from ingest.convert import find_libreoffice
from tests.fixtures.office import MISSING, convert_files, encrypt_doc, encrypt_xls
from docx import Document

from ingest.errors import UnreadableFile
from ingest.locate import locate_tables
from ingest.readers import read_grids, unreadable_reason
from ingest.readers.csv import read_csv
from ingest.readers.formulas import FORMULA_REASON
from ingest.readers.html import decode_html, read_html
from ingest.readers.ooxml import TOO_LARGE_REASON
from ingest.readers.xls import read_xls
from ingest.readers.xlsx import read_xlsx
from ingest.rules import check_table
from ingest.sniff import sniff_kind
from service.samples.tables import SAMPLE_ROWS, build_xlsx

VALID = SAMPLE_ROWS["valid"]
DAY = dt.datetime(2023, 12, 22)


def _values(row):
    return [cell.value for cell in row]


def _checked(grids):
    return [check_table(table, first_week=False) for table in locate_tables(grids)]


def _rules(report):
    return [violation.rule for violation in report.violations]


# --- LibreOffice-made .xls and .doc files --------------------------------------------------


def _convert(tmp: Path, files: dict[str, bytes], target: str) -> dict[str, bytes]:
    binary = find_libreoffice()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return convert_files(binary, tmp, files, target)


def _hidden_sheet_workbook() -> bytes:
    workbook = openpyxl.load_workbook(io.BytesIO(build_xlsx([VALID], sheet="第3周")))
    hidden = workbook.create_sheet("旧表")
    hidden["A1"] = "hidden"
    hidden.sheet_state = "hidden"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def xls_files(tmp_path_factory) -> dict[str, bytes]:
    sources = {
        "valid.xlsx": build_xlsx([VALID]),
        "text.xlsx": build_xlsx([VALID], as_text=True),
        "date.xlsx": build_xlsx([VALID], date_text=dt.date(2023, 12, 22)),
        "r3r4.xlsx": build_xlsx([SAMPLE_ROWS["r3_r4_broken"]], unit="大西沟乡"),
        "sheets.xlsx": _hidden_sheet_workbook(),
    }
    return _convert(tmp_path_factory.mktemp("xls"), sources, "xls")


@pytest.fixture(scope="module")
def doc_file(tmp_path_factory) -> bytes:
    buffer = io.BytesIO()
    Document().save(buffer)
    return _convert(tmp_path_factory.mktemp("doc"), {"blank.docx": buffer.getvalue()}, "doc")["blank"]


def test_xls_reader_data_row(xls_files):
    grid = read_xls(xls_files["valid"])[0]
    assert _values(grid.rows[7])[:19] == list(VALID)


def test_xls_reader_whole_numbers_are_int(xls_files):
    grid = read_xls(xls_files["valid"])[0]
    assert type(grid.rows[7][0].value) is int


def test_xls_reader_cell_ref(xls_files):
    grid = read_xls(xls_files["valid"])[0]
    assert grid.rows[7][5].ref == "Sheet1!F8"


def test_xls_reader_merged_header(xls_files):
    grid = read_xls(xls_files["valid"])[0]
    assert _values(grid.rows[2])[:4] == ["活动覆盖区域", None, "活动数量及参与人数", None]


def test_xls_reader_merged_title_once(xls_files):
    grid = read_xls(xls_files["valid"])[0]
    assert len([cell for cell in grid.rows[0] if cell.value is not None]) == 1


def test_xls_reader_rectangular_rows(xls_files):
    grid = read_xls(xls_files["valid"])[0]
    assert {len(row) for row in grid.rows if row} == {20}


def test_xls_reader_keeps_text_numbers(xls_files):
    grid = read_xls(xls_files["text"])[0]
    assert grid.rows[7][0].value == "1"


def test_xls_reader_date_cell(xls_files):
    grid = read_xls(xls_files["date"])[0]
    assert DAY in _values(grid.rows[1])


def test_xls_reader_sheet_name(xls_files):
    assert read_xls(xls_files["sheets"])[0].name == "第3周"


def test_xls_reader_skips_hidden_sheet(xls_files):
    assert [grid.name for grid in read_xls(xls_files["sheets"])] == ["第3周"]


def test_xls_valid_form_accepted(xls_files):
    (report,) = _checked(read_xls(xls_files["valid"]))
    assert report.accepted


def test_xls_form_unit(xls_files):
    (report,) = _checked(read_xls(xls_files["r3r4"]))
    assert report.table.header.unit_text == "大西沟乡"


def test_xls_form_fill_date(xls_files):
    (report,) = _checked(read_xls(xls_files["date"]))
    assert report.table.header.fill_date == DAY.date()


def test_xls_form_rules_broken(xls_files):
    (report,) = _checked(read_xls(xls_files["r3r4"]))
    assert _rules(report) == ["R3", "R4"]


def test_xls_read_grids(xls_files):
    assert read_grids(xls_files["valid"], "xls")[0].name == "Sheet1"


def test_xls_encrypted_reason(xls_files):
    with pytest.raises(UnreadableFile) as caught:
        read_xls(encrypt_xls(xls_files["valid"]))
    assert "密码" in caught.value.reason


def test_xls_truncated_reason(xls_files):
    with pytest.raises(UnreadableFile) as caught:
        read_xls(xls_files["valid"][:3000])
    assert "损坏" in caught.value.reason


def test_xls_not_ole2():
    with pytest.raises(UnreadableFile):
        read_xls(b"not a workbook at all")


def test_sniff_xls_by_bytes_under_doc_name(xls_files):
    assert sniff_kind(xls_files["valid"], "统计表.doc") == "xls"


def test_sniff_xls_under_et_name(xls_files):
    assert sniff_kind(xls_files["valid"], "统计表.et") == "xls"


def test_sniff_xls_under_xlsx_name(xls_files):
    assert sniff_kind(xls_files["valid"], "统计表.xlsx") == "xls"


def test_sniff_encrypted_xls(xls_files):
    assert sniff_kind(encrypt_xls(xls_files["valid"]), "统计表.xls") == "encrypted"


def test_sniff_doc(doc_file):
    assert sniff_kind(doc_file, None) == "doc"


def test_sniff_doc_named_wps(doc_file):
    assert sniff_kind(doc_file, "统计表.wps") == "wps"


def test_sniff_encrypted_doc(doc_file):
    assert sniff_kind(encrypt_doc(doc_file), "统计表.doc") == "encrypted"


# --- .xlsx as WPS and other programs write it ------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STYLES = (
    f'<styleSheet xmlns="{_MAIN}"><fonts count="1"><font/></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="{date_format}" applyNumberFormat="1"/></cellXfs>'
    "</styleSheet>"
)


def _package(sheet_data: str, *, dimension: str = "A1", date_format: int = 14, absolute: bool = False,
             extra: dict[str, bytes] | None = None) -> bytes:
    """Return a minimal .xlsx whose only sheet, 表1, has the given <sheetData> content.

    Style 1 uses the built-in number format ``date_format``; ``absolute`` writes the workbook's
    relationship targets as absolute part names, as some writers do.
    """
    target = "/xl/worksheets/sheet1.xml" if absolute else "worksheets/sheet1.xml"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
            f'Type="{_DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}"><sheets>'
            '<sheet name="表1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId1" Type="{_DOC_RELS}/worksheet" Target="{target}"/>'
            f'<Relationship Id="rId2" Type="{_DOC_RELS}/styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _STYLES.replace("{date_format}", str(date_format)),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{_MAIN}"><dimension ref="{dimension}"/>'
            f"<sheetData>{sheet_data}</sheetData></worksheet>"
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _cells(grid):
    return [_values(row) for row in grid.rows]


def test_xlsx_wrong_dimension():
    data = _package('<row r="1"><c r="A1"><v>1</v></c><c r="T1"><v>20</v></c></row><row r="9"><c r="C9"><v>3</v></c></row>')
    grid = read_xlsx(data)[0]
    assert grid.rows[0][19].value == 20
    assert grid.rows[8][2].value == 3


def test_xlsx_wps_rebuilt_dimension():
    # A WPS-saved sheet whose dimension element claims A1 alone.
    source = build_xlsx([VALID])
    data = _rewrite(source, "xl/worksheets/sheet1.xml", lambda xml: _replace_dimension(xml, "A1"))
    (report,) = _checked(read_xlsx(data))
    assert report.values[0][20] == 56


def test_xlsx_inline_strings():
    data = _package('<row r="1"><c r="A1" t="inlineStr"><is><t>填报人：李明</t></is></c></row>')
    assert read_xlsx(data)[0].rows[0][0].value == "填报人：李明"


def test_xlsx_cells_without_references():
    data = _package('<row><c><v>1</v></c><c><v>2</v></c></row><row><c t="inlineStr"><is><t>x</t></is></c></row>')
    assert _cells(read_xlsx(data)[0]) == [[1, 2], ["x", None]]


@pytest.mark.parametrize("date_format", [27, 31, 36, 50, 57, 58])
def test_xlsx_chinese_date_format(date_format):
    data = _package('<row r="1"><c r="A1" s="1"><v>45282</v></c></row>', date_format=date_format)
    assert read_xlsx(data)[0].rows[0][0].value == DAY


def test_xlsx_wps_date_format_fill_date():
    # A Chinese Excel or WPS can store the 填报时间 cell's 2023年12月22日 format as built-in id 31,
    # with no numFmt element.
    source = build_xlsx([VALID], date_text=dt.date(2023, 12, 22))
    data = _rewrite(source, "xl/styles.xml", _builtin_date_format)
    (report,) = _checked(read_xlsx(data))
    assert report.table.header.fill_date == DAY.date()


def _builtin_date_format(xml: str) -> str:
    """Return the styles with the custom 年月日 format replaced by built-in id 31."""
    custom = re.search(r'<numFmt numFmtId="(\d+)" formatCode="yyyy年m月d日"/>', xml)
    xml = xml.replace(custom.group(0), "")
    return xml.replace(f'numFmtId="{custom.group(1)}"', 'numFmtId="31"')


def test_xlsx_general_number_stays_number():
    data = _package('<row r="1"><c r="A1"><v>45282</v></c></row>')
    assert read_xlsx(data)[0].rows[0][0].value == 45282


def test_xlsx_shared_formulas_computed():
    data = _package(
        '<row r="1"><c r="A1"><v>2</v></c><c r="B1"><f t="shared" ref="B1:B3" si="0">A1*10</f></c></row>'
        '<row r="2"><c r="A2"><v>3</v></c><c r="B2"><f t="shared" si="0"/></c></row>'
        '<row r="3"><c r="A3"><v>4</v></c><c r="B3"><f t="shared" si="0"/></c></row>'
    )
    assert [row[1].value for row in read_xlsx(data)[0].rows] == [20, 30, 40]


def test_xlsx_shared_formula_cached_values_kept():
    data = _package(
        '<row r="1"><c r="A1"><v>2</v></c><c r="B1"><f t="shared" ref="B1:B2" si="0">A1*10</f><v>7</v></c></row>'
        '<row r="2"><c r="A2"><v>3</v></c><c r="B2"><f t="shared" si="0"/></c></row>'
    )
    assert [row[1].value for row in read_xlsx(data)[0].rows] == [7, 30]


def test_xlsx_cached_result_not_recomputed():
    data = _package('<row r="1"><c r="A1"><v>2</v></c><c r="B1"><f>A1+1</f><v>99</v></c></row>')
    assert read_xlsx(data)[0].rows[0][1].value == 99


def test_xlsx_cached_empty_text_result():
    # Excel's result of =IF(A1=2,"",1): an empty string, which needs no computing.
    data = _package('<row r="1"><c r="A1"><v>2</v></c><c r="B1" t="str"><f>IF(A1=2,"",1)</f><v></v></c></row>')
    assert _cells(read_xlsx(data)[0]) == [[2]]


def test_xlsx_uncomputable_formula_reason():
    data = _package('<row r="1"><c r="A1"><v>2</v></c><c r="B1"><f>IF(A1=2,3,1)</f></c></row>')
    with pytest.raises(UnreadableFile) as caught:
        read_xlsx(data)
    assert caught.value.reason == FORMULA_REASON


def test_xlsx_formula_without_text_reason():
    data = _package('<row r="1"><c r="B1"><f t="shared" si="4"/></c></row>')
    with pytest.raises(UnreadableFile) as caught:
        read_xlsx(data)
    assert caught.value.reason == FORMULA_REASON


def test_xlsx_absolute_relationship_targets():
    data = _package('<row r="1"><c r="A1"><v>2</v></c><c r="B1"><f>A1*2</f></c></row>', absolute=True)
    assert read_xlsx(data)[0].rows[0][1].value == 4


def test_xlsx_openpyxl_formula_computed():
    workbook = openpyxl.Workbook()
    workbook.active.append([1, 2, "=SUM(A1:B1)"])
    assert read_xlsx(_save(workbook))[0].rows[0][2].value == 3


def test_xlsx_form_totals_as_formulas_accepted():
    # A clerk's workbook whose 6栏 and 7栏 add up the categories, saved by a program that
    # stores no results.
    workbook = openpyxl.load_workbook(io.BytesIO(build_xlsx([VALID])))
    sheet = workbook.active
    sheet["E8"] = "=H8+J8+L8+N8+P8+R8"
    sheet["F8"] = "=SUM(I8,K8,M8,O8,Q8,S8)"
    (report,) = _checked(read_xlsx(_save(workbook)))
    assert report.values[0][6] == 15
    assert report.values[0][7] == 892
    assert report.accepted


def test_xlsm_values_read():
    workbook = openpyxl.load_workbook(io.BytesIO(build_xlsx([VALID])))
    data = _rewrite(_save(workbook), None, None, extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 macro"})
    (report,) = _checked(read_grids(data, sniff_kind(data, "周报.xlsm")))
    assert report.accepted


def test_xlsx_huge_shared_strings_part():
    # A shared strings part that inflates to 65 MB, as in a zip bomb disguised as a workbook.
    data = _package('<row r="1"><c r="A1"><v>1</v></c></row>', extra={"xl/sharedStrings.xml": b" " * (65 * 1024 * 1024)})
    with pytest.raises(UnreadableFile) as caught:
        read_xlsx(data)
    assert caught.value.reason == TOO_LARGE_REASON


def test_xlsx_zip_of_unknown_version():
    data = bytearray(build_xlsx([VALID]))
    central = data.index(b"PK\x01\x02")
    data[central + 6 : central + 8] = (126).to_bytes(2, "little")
    with pytest.raises(UnreadableFile):
        read_xlsx(bytes(data))


def test_xlsx_damaged_workbook_xml():
    data = _rewrite(build_xlsx([VALID]), "xl/workbook.xml", lambda xml: xml.replace("<sheets>", "<sheets", 1))
    with pytest.raises(UnreadableFile):
        read_xlsx(data)


def test_xlsx_damaged_worksheet_xml():
    data = _package('<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2"><v>')
    with pytest.raises(UnreadableFile):
        read_xlsx(data)


def _save(workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _replace_dimension(xml: str, reference: str) -> str:
    start = xml.index("<dimension ref=")
    end = xml.index("/>", start) + 2
    return xml[:start] + f'<dimension ref="{reference}"/>' + xml[end:]


def _rewrite(data: bytes, part: str | None, change, extra: dict[str, bytes] | None = None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == part:
                body = change(body.decode()).encode()
            target.writestr(item, body)
        for name, body in (extra or {}).items():
            target.writestr(name, body)
    return output.getvalue()


# --- CSV ------------------------------------------------------------------------------------


def _form_csv(rows=(VALID,), delimiter: str = ",") -> str:
    """Return the sample form as Excel writes it when saved as CSV: one line per sheet row."""
    grid = read_xlsx(build_xlsx(list(rows)))[0]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    for row in grid.rows:
        writer.writerow(["" if cell.value is None else cell.value for cell in row])
    return buffer.getvalue()


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
        lambda text: text.encode("gb18030"),
        lambda text: text.encode("utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "gb18030", "utf-16"],
)
def test_csv_form_accepted(encode):
    (report,) = _checked(read_csv(encode(_form_csv())))
    assert report.accepted


def test_csv_form_values():
    (report,) = _checked(read_csv(_form_csv().encode("gb18030")))
    assert [report.values[0][column] for column in range(2, 21)] == list(VALID)


def test_csv_form_unit():
    (report,) = _checked(read_csv(_form_csv().encode("gb18030")))
    assert report.table.header.unit_text == "水定镇"


def test_csv_tab_separated():
    (report,) = _checked(read_csv(_form_csv(delimiter="\t").encode("utf-16")))
    assert report.accepted


def test_csv_cell_ref():
    grid = read_csv("a,b\n1,2\n".encode())[0]
    assert grid.rows[1][1].ref == "CSV!B2"


def test_csv_quoted_comma():
    grid = read_csv('"3,120人次",2\n'.encode())[0]
    assert _values(grid.rows[0]) == ["3,120人次", "2"]


def test_csv_rows_padded():
    grid = read_csv("a,b,c\n1\n".encode())[0]
    assert _values(grid.rows[1]) == ["1", None, None]


def test_csv_gbk_name():
    grid = read_csv("填报人：赵喆,1\n".encode("gbk"))[0]
    assert grid.rows[0][0].value == "填报人：赵喆"


def test_csv_invalid_encoding_reason():
    with pytest.raises(UnreadableFile) as caught:
        read_csv(b"a,b\n\x80\xff,1\n")
    assert "编码" in caught.value.reason


def test_csv_read_grids():
    assert read_grids("a,b\n".encode(), "csv")[0].name == "CSV"


# --- HTML -----------------------------------------------------------------------------------

_CATEGORIES = ("开展政策宣讲", "农牧民职业技能培训", "防灾减灾科普宣传", "食品安全科<br>普宣传", "卫生健康科普宣传", "其他活动")


def _form_html(rows=(VALID,), *, charset: str = "utf-8", unit: str = "水定镇", reporter: str = "李明") -> str:
    """Return the form as a table in a mail body, with the county form's spans."""
    categories = "".join(f'<td colspan="2">{name}</td>' for name in _CATEGORIES)
    pairs = "<td>场次</td><td>人次</td>" * 7
    numbering = "".join(f"<td>{column}</td>" for column in range(2, 21))
    data = "".join("<tr>" + "".join(f"<td>{'' if value is None else value}</td>" for value in row) + "<td></td></tr>" for row in rows)
    return (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        "<style>td {border: 1px solid}</style></head><body>"
        "<div>县科协：</div><div>附件是我镇本周统计表，请查收。</div>"
        "<p>霍城县2023-2024“科技之冬”活动开展周统计表</p>"
        f"<p>填报乡镇（单位）：{unit}&nbsp;&nbsp;&nbsp;填报人：{reporter}&nbsp;&nbsp;联系电话：138****0001"
        "&nbsp;&nbsp;填报时间：2023年12月22日</p>"
        '<table border="1"><tbody>'
        '<tr><td colspan="2">活动覆盖区域</td><td colspan="17">活动数量及参与人数</td><td rowspan="4">备注</td></tr>'
        '<tr><td rowspan="3">乡镇（个）</td><td rowspan="3">村（个）</td><td colspan="2">累计</td>'
        '<td colspan="15">其中：本周开展活动数量及人次</td></tr>'
        '<tr><td rowspan="2">场次</td><td rowspan="2">人次</td><td colspan="2">合计</td>'
        f'<td rowspan="2">其中：科技人员参与人数</td>{categories}</tr>'
        f"<tr>{pairs}</tr>"
        f"<tr>{numbering}<td></td></tr>"
        f"{data}</tbody></table>"
        "<p>填表说明：2：表间关系：6栏=9+11+13+15+17+19</p></body></html>"
    )


def test_html_form_accepted():
    (report,) = _checked(read_html(_form_html().encode()))
    assert report.accepted


def test_html_form_values():
    (report,) = _checked(read_html(_form_html().encode()))
    assert [report.values[0][column] for column in range(2, 21)] == list(VALID)


def test_html_form_reporter():
    (report,) = _checked(read_html(_form_html().encode()))
    assert report.table.header.reporter == "李明"


def test_html_form_broken_rule():
    (report,) = _checked(read_html(_form_html([SAMPLE_ROWS["r1_broken"]]).encode()))
    assert _rules(report) == ["R1"]


def test_html_form_gb2312_label_with_gbk_text():
    # 喆 is in GBK but not in GB2312, as in pages that declare gb2312 and contain GBK text.
    data = _form_html(charset="gb2312", reporter="赵喆").encode("gbk")
    (report,) = _checked(read_html(data))
    assert report.table.header.reporter == "赵喆"


def test_html_utf8_wins_over_declared_charset():
    assert decode_html('<meta charset="gb2312"><p>水定镇</p>'.encode()) == '<meta charset="gb2312"><p>水定镇</p>'


def test_html_declared_big5():
    assert "填報" in decode_html('<meta charset="big5"><p>填報</p>'.encode("big5"))


def test_html_colspan_blank_after_first():
    grid = read_html(b'<table><tr><td colspan="3">a</td><td>b</td></tr></table>')[0]
    assert _values(grid.rows[0]) == ["a", None, None, "b"]


def test_html_rowspan_blank_below():
    grid = read_html(b'<table><tr><td rowspan="2">a</td><td>b</td></tr><tr><td>c</td></tr></table>')[0]
    assert _values(grid.rows[1]) == [None, "c"]


def test_html_rowspan_zero_to_end():
    html = b'<table><tr><td rowspan="0">a</td><td>b</td></tr><tr><td>c</td></tr><tr><td>d</td></tr></table>'
    grid = read_html(html)[0]
    assert [row[1].value for row in grid.rows] == ["b", "c", "d"]


def test_html_huge_colspan_bounded():
    # Cells placed past column 256 are not read.
    grid = read_html(b'<table><tr><td colspan="999999">a</td><td>b</td></tr></table>')[0]
    assert _values(grid.rows[0]) == ["a"]


def test_html_cell_ref():
    grid = read_html(b"<table><tr><td>a</td></tr><tr><td>b</td><td>c</td></tr></table>")[0]
    assert grid.rows[1][1].ref == "表格1第2行第2列"


def test_html_line_break_in_cell():
    grid = read_html(b"<table><tr><td>a<br>b</td></tr></table>")[0]
    assert grid.rows[0][0].value == "a\nb"


def test_html_excel_number():
    grid = read_html(b'<table><tr><td x:num="2385">2,385</td><td x:num>12</td></tr></table>')[0]
    assert _values(grid.rows[0]) == [2385, "12"]


def test_html_header_cells():
    grid = read_html(b"<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>b</td></tr></tbody></table>")[0]
    assert [row[0].value for row in grid.rows] == ["a", "b"]


def test_html_hidden_row_skipped():
    grid = read_html(b'<table><tr><td>a</td></tr><tr style="display: none"><td>x</td></tr></table>')[0]
    assert _cells(grid) == [["a"]]


def test_html_script_skipped():
    grid = read_html(b"<script>var t = '<table>';</script><table><tr><td>a</td></tr></table>")[0]
    assert grid.text_above == []


def test_html_text_around_table():
    grid = read_html(b"<p>above</p><table><tr><td>a</td></tr></table><p>below</p>")[0]
    assert grid.text_above == ["above"]
    assert grid.text_below == ["below"]


def test_html_nested_table_order():
    html = b"<table><tr><td>outer<table><tr><td>inner</td></tr></table>after</td></tr></table>"
    assert [grid.name for grid in read_html(html)] == ["表格1", "表格2"]


def test_html_nested_table_text_around():
    html = b"<table><tr><td>outer<table><tr><td>inner</td></tr></table>after</td></tr></table>"
    inner = read_html(html)[1]
    assert inner.text_above == ["outer"]
    assert inner.text_below == ["after"]


def test_html_nested_table_not_in_outer_cell():
    html = b"<table><tr><td>outer<table><tr><td>inner</td></tr></table>after</td></tr></table>"
    assert read_html(html)[0].rows[0][0].value == "outer\nafter"


def test_html_form_in_layout_table():
    # Mail templates wrap the body in a layout table; the form is then a nested table.
    html = "<table><tr><td>" + _form_html() + "</td></tr></table>"
    (report,) = _checked(read_html(html.encode()))
    assert report.table.header.unit_text == "水定镇"


def test_html_empty_table_skipped():
    grids = read_html(b"<table></table><p>x</p><table><tr><td>a</td></tr></table>")
    assert [grid.name for grid in grids] == ["表格1"]
    assert grids[0].text_above == ["x"]


def test_html_no_tables():
    assert read_html(b"<p>only text</p>") == []


def test_html_empty_document():
    assert read_html(b"") == []


def test_html_read_grids():
    assert read_grids(b"<table><tr><td>a</td></tr></table>", "html")[0].name == "表格1"


# --- dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["doc", "wps", "et", "encrypted", "pdf", "image", "zip", "rar", "7z", "eml", "unknown"])
def test_read_grids_reason_per_kind(kind):
    with pytest.raises(UnreadableFile) as caught:
        read_grids(b"", kind)
    assert caught.value.reason == unreadable_reason(kind)


def test_read_grids_encrypted_reason():
    assert "去掉文件密码" in unreadable_reason("encrypted")


def test_read_grids_doc_reason_names_docx():
    assert ".docx" in unreadable_reason("doc")
