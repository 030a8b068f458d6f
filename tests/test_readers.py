"""Readers: .xlsx and .docx bytes into grids of cells."""

import datetime as dt
import io
import re
import zipfile

import openpyxl
import pytest
from docx import Document
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from openpyxl.styles import Font

from ingest.errors import UnreadableFile
from ingest.readers import read_grids
from ingest.readers.docx import read_docx
from ingest.readers.xlsx import read_xlsx
from service.samples.tables import SAMPLE_ROWS, TITLE, WordWrapping, build_docx, build_xlsx


def _values(row):
    return [cell.value for cell in row]


def _save_workbook(workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _save_document(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- xlsx -----------------------------------------------------------------------------------


def test_xlsx_reader_data_row():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]]))[0]
    assert _values(grid.rows[7])[:19] == list(SAMPLE_ROWS["valid"])


def test_xlsx_reader_cell_ref():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]]))[0]
    assert grid.rows[7][5].ref == "Sheet1!F8"


def test_xlsx_reader_sheet_name():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]], sheet="周报"))[0]
    assert grid.name == "周报"


def test_xlsx_reader_merged_header():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]]))[0]
    assert _values(grid.rows[2])[:4] == ["活动覆盖区域", None, "活动数量及参与人数", None]


def test_xlsx_reader_merged_title_once():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]]))[0]
    assert [cell.value for cell in grid.rows[0] if cell.value is not None] == [TITLE]


def test_xlsx_reader_keeps_text_numbers():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]], as_text=True))[0]
    assert grid.rows[7][0].value == "1"


def test_xlsx_reader_date_cell():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]], date_text=dt.date(2023, 12, 22)))[0]
    assert grid.rows[1][16].value == dt.datetime(2023, 12, 22)


def test_xlsx_reader_rectangular_rows():
    grid = read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]]))[0]
    assert {len(row) for row in grid.rows if row} == {20}


def test_xlsx_reader_uncached_formula_computed():
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "=1+1"
    # openpyxl writes no cached result, so the reader computes the plain arithmetic itself.
    grid = read_xlsx(_save_workbook(workbook))[0]
    assert grid.rows[0][0].value == 2


def test_xlsx_reader_skips_hidden_sheet():
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "shown"
    hidden = workbook.create_sheet("旧表")
    hidden["A1"] = "hidden"
    hidden.sheet_state = "hidden"
    assert [grid.name for grid in read_xlsx(_save_workbook(workbook))] == ["Sheet"]


def test_xlsx_reader_far_row_position():
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "top"
    workbook.active["C5000"] = 7
    grid = read_xlsx(_save_workbook(workbook))[0]
    assert grid.rows[4999][2].ref == "Sheet!C5000"


def test_xlsx_reader_far_row_value():
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "top"
    workbook.active["C5000"] = 7
    grid = read_xlsx(_save_workbook(workbook))[0]
    assert grid.rows[4999][2].value == 7


def test_xlsx_reader_drops_styled_tail():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"] = "top"
    # A formatted but empty cell far below stretches the used range without adding content.
    sheet["T200000"].font = Font(bold=True)
    grid = read_xlsx(_save_workbook(workbook))[0]
    assert len(grid.rows) == 1


def test_xlsx_reader_stops_after_empty_run():
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "top"
    workbook.active["A15000"] = "far below"
    grid = read_xlsx(_save_workbook(workbook))[0]
    assert len(grid.rows) == 1


def _stretch_used_range(data: bytes, last_row: int) -> bytes:
    """Return the workbook with styled empty cells in every row up to ``last_row``, as a sheet
    looks after a clerk formats whole columns, and its dimension set to A1:T1048576."""
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = re.sub(r'<dimension ref="[^"]+"/>', '<dimension ref="A1:T1048576"/>', body.decode())
                empty = "".join(f'<row r="{number}"><c r="T{number}" s="0"/></row>' for number in range(20, last_row + 1))
                body = text.replace("</sheetData>", empty + "</sheetData>").encode()
            target.writestr(item, body)
    return output.getvalue()


def test_xlsx_reader_stretched_used_range():
    data = _stretch_used_range(build_xlsx([SAMPLE_ROWS["valid"]]), last_row=200_000)
    grid = read_xlsx(data)[0]
    assert len(grid.rows) == 16


def test_xlsx_reader_far_column_width():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"] = "top"
    sheet["A2"] = "next"
    sheet["XFD1"] = "stray"
    grid = read_xlsx(_save_workbook(workbook))[0]
    assert len(grid.rows[1]) == 64


def test_xlsx_reader_damaged():
    with pytest.raises(UnreadableFile) as caught:
        read_xlsx(build_xlsx([SAMPLE_ROWS["valid"]])[:400])
    assert "损坏" in caught.value.reason


def test_xlsx_reader_not_a_zip():
    with pytest.raises(UnreadableFile):
        read_xlsx(b"not a workbook")


# --- docx -----------------------------------------------------------------------------------


def test_docx_reader_one_grid_per_table():
    assert [grid.name for grid in read_docx(build_docx([SAMPLE_ROWS["valid"]]))] == ["表格1"]


def test_docx_reader_data_row():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert _values(grid.rows[5])[:19] == [str(value) for value in SAMPLE_ROWS["valid"]]


def test_docx_reader_cell_ref():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert grid.rows[5][4].ref == "表格1第6行第5列"


def test_docx_reader_grid_span_once():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert _values(grid.rows[0])[:3] == ["活动覆盖区域", None, "活动数量及参与人数"]


def test_docx_reader_vertical_merge_once():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert [grid.rows[number][0].value for number in (1, 2, 3)] == ["乡镇（个）", None, None]


def test_docx_reader_remark_column_once():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert [grid.rows[number][19].value for number in range(4)] == ["备注", None, None, None]


def test_docx_reader_rows_full_width():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert {len(row) for row in grid.rows} == {20}


def test_docx_reader_line_break_kept():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert grid.rows[2][13].value == "食品安全科\n普宣传"


def test_docx_reader_text_above():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇"))[0]
    assert grid.text_above[0] == "附件二"


def test_docx_reader_fill_line_above():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇"))[0]
    assert grid.text_above[2].startswith("填报乡镇（单位）：清水河镇")


def test_docx_reader_text_below():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]]))[0]
    assert grid.text_below[0].startswith("填表说明")


def test_docx_reader_merged_data_cell_once():
    document = Document()
    table = document.add_table(rows=1, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "5"
    table.cell(0, 2).text = "6"
    grid = read_docx(_save_document(document))[0]
    assert _values(grid.rows[0]) == ["5", None, "6"]


def test_docx_reader_vertical_data_merge_once():
    document = Document()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 1).merge(table.cell(1, 1)).text = "9"
    grid = read_docx(_save_document(document))[0]
    assert grid.rows[1][1].value is None


def test_docx_reader_text_between_tables():
    document = Document()
    document.add_table(rows=1, cols=1)
    document.add_paragraph("两表之间")
    document.add_table(rows=1, cols=1)
    first, second = read_docx(_save_document(document))
    assert (first.text_below, second.text_above) == (["两表之间"], ["两表之间"])


def test_docx_reader_second_table_name():
    document = Document()
    document.add_table(rows=1, cols=1)
    document.add_table(rows=1, cols=1)
    assert [grid.name for grid in read_docx(_save_document(document))] == ["表格1", "表格2"]


def test_docx_reader_no_tables():
    document = Document()
    document.add_paragraph("只有文字")
    assert read_docx(_save_document(document)) == []


def test_docx_reader_layout_table_text_above():
    grids = read_docx(build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇", wrapping=WordWrapping.LAYOUT_TABLES))
    assert grids[1].text_above[-1].startswith("填报乡镇（单位）：清水河镇  填报人：李明")


def test_docx_reader_layout_table_title_kept():
    grids = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.LAYOUT_TABLES))
    assert grids[1].text_above[:2] == ["附件二", TITLE]


def test_docx_reader_signature_table_below():
    grids = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.LAYOUT_TABLES))
    assert grids[1].text_below[0] == "单位负责人：  审核人：  填表人：李明"


def test_docx_reader_large_table_not_context():
    document = Document()
    document.add_table(rows=4, cols=1).cell(0, 0).text = "上一表"
    document.add_paragraph("两表之间")
    document.add_table(rows=1, cols=1)
    assert read_docx(_save_document(document))[1].text_above == ["两表之间"]


def test_docx_reader_nested_grid_names():
    grids = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.NESTED))
    assert [grid.name for grid in grids] == ["表格1", "表格1中的表格1"]


def test_docx_reader_nested_values():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.NESTED))[1]
    assert _values(grid.rows[5])[:19] == [str(value) for value in SAMPLE_ROWS["valid"]]


def test_docx_reader_nested_ref():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.NESTED))[1]
    assert grid.rows[5][4].ref == "表格1中的表格1第6行第5列"


def test_docx_reader_nested_text_above():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.NESTED))[1]
    assert grid.text_above[:2] == ["附件二", TITLE]


def test_docx_reader_nested_text_below():
    grid = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.NESTED))[1]
    assert grid.text_below[0].startswith("填表说明")


def test_docx_reader_outer_cell_without_nested_text():
    outer = read_docx(build_docx([SAMPLE_ROWS["valid"]], wrapping=WordWrapping.NESTED))[0]
    assert "填表说明" in outer.rows[0][0].value
    assert "410" not in outer.rows[0][0].value


def test_docx_reader_nested_in_two_cells():
    document = Document()
    outer = document.add_table(rows=2, cols=1)
    outer.cell(0, 0).add_table(rows=1, cols=1).cell(0, 0).text = "甲"
    outer.cell(1, 0).add_table(rows=1, cols=1).cell(0, 0).text = "乙"
    names = [grid.name for grid in read_docx(_save_document(document))]
    assert names == ["表格1", "表格1中的表格1", "表格1中的表格2"]


def test_docx_reader_nested_row_text_above():
    document = Document()
    outer = document.add_table(rows=2, cols=1)
    outer.cell(0, 0).text = "填报单位：水定镇"
    outer.cell(1, 0).add_table(rows=1, cols=1)
    assert read_docx(_save_document(document))[1].text_above == ["填报单位：水定镇"]


def test_docx_reader_deep_nesting_bounded():
    document = Document()
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    for _ in range(8):
        cell = cell.add_table(rows=1, cols=1).cell(0, 0)
    assert len(read_docx(_save_document(document))) == 5


def _wrap(element, *tags: str) -> None:
    """Wrap ``element`` in place in the given elements, outermost first (e.g. w:sdt, w:sdtContent)."""
    parent, position = element.getparent(), element.getparent().index(element)
    outer = inner = OxmlElement(tags[0])
    for tag in tags[1:]:
        child = OxmlElement(tag)
        inner.append(child)
        inner = child
    parent.insert(position, outer)
    inner.append(element)


def test_docx_reader_table_in_content_control():
    document = Document()
    table = document.add_table(rows=1, cols=1)
    table.cell(0, 0).text = "12"
    _wrap(table._tbl, "w:sdt", "w:sdtContent")
    assert _values(read_docx(_save_document(document))[0].rows[0]) == ["12"]


def test_docx_reader_run_in_content_control():
    document = Document()
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    cell.text = "46"
    _wrap(cell.paragraphs[0].runs[0]._r, "w:sdt", "w:sdtContent")
    assert _values(read_docx(_save_document(document))[0].rows[0]) == ["46"]


def test_docx_reader_paragraph_in_content_control():
    document = Document()
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    cell.text = "892"
    _wrap(cell.paragraphs[0]._p, "w:sdt", "w:sdtContent")
    assert _values(read_docx(_save_document(document))[0].rows[0]) == ["892"]


def test_docx_reader_tracked_insertion():
    document = Document()
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    cell.text = "15"
    _wrap(cell.paragraphs[0].runs[0]._r, "w:ins")
    assert _values(read_docx(_save_document(document))[0].rows[0]) == ["15"]


def test_docx_reader_fill_line_in_content_control():
    document = Document()
    paragraph = document.add_paragraph("填报人：李明")
    _wrap(paragraph._p, "w:sdt", "w:sdtContent")
    document.add_table(rows=1, cols=1)
    assert read_docx(_save_document(document))[0].text_above == ["填报人：李明"]


def _legacy_horizontal_merge(cell, value: str | None) -> None:
    """Mark the cell as a Word 2003 horizontal merge: restart for a value, else continue."""
    merge = OxmlElement("w:hMerge")
    if value is not None:
        merge.set(qn("w:val"), "restart")
    cell._tc.get_or_add_tcPr().append(merge)


def test_docx_reader_legacy_hmerge_once():
    document = Document()
    table = document.add_table(rows=1, cols=3)
    for cell, text in zip(table.rows[0].cells, ("累计", "累计", "备注")):
        cell.text = text
    _legacy_horizontal_merge(table.cell(0, 0), "累计")
    _legacy_horizontal_merge(table.cell(0, 1), None)
    grid = read_docx(_save_document(document))[0]
    assert _values(grid.rows[0]) == ["累计", None, "备注"]


def test_docx_reader_damaged():
    with pytest.raises(UnreadableFile) as caught:
        read_docx(build_docx([SAMPLE_ROWS["valid"]])[:500])
    assert "Word" in caught.value.reason


def test_docx_reader_workbook_bytes():
    with pytest.raises(UnreadableFile):
        read_docx(build_xlsx([SAMPLE_ROWS["valid"]]))


# --- dispatch -------------------------------------------------------------------------------


def test_read_grids_xlsx():
    assert read_grids(build_xlsx([SAMPLE_ROWS["valid"]]), "xlsx")[0].name == "Sheet1"


def test_read_grids_docx():
    assert read_grids(build_docx([SAMPLE_ROWS["valid"]]), "docx")[0].name == "表格1"


def test_read_grids_xls_reason():
    with pytest.raises(UnreadableFile) as caught:
        read_grids(b"\xd0\xcf\x11\xe0", "xls")
    assert ".xlsx" in caught.value.reason


@pytest.mark.parametrize("kind", ["pdf", "image", "zip", "rar", "7z", "unknown"])
def test_read_grids_unreadable_kind(kind):
    with pytest.raises(UnreadableFile) as caught:
        read_grids(b"", kind)
    assert caught.value.reason
