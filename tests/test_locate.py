"""locate_tables: finding 附件二 in grids and reading its 填报 line and data rows."""

import datetime as dt

import pytest

from ingest.errors import TableNotFound
from ingest.locate import locate_tables
from ingest.readers.docx import read_docx
from ingest.readers.xlsx import read_xlsx
from ingest.table import Cell, Grid
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx

DAY = dt.date(2023, 12, 22)


def _xlsx_table(rows, **options):
    return locate_tables(read_xlsx(build_xlsx(rows, **options)))[0]


def _docx_table(rows, **options):
    return locate_tables(read_docx(build_docx(rows, **options)))[0]


def _grid(rows: list[list[object]], name: str = "表") -> Grid:
    """Return a grid of literal values with refs like 表R3C2 (1-based)."""
    return Grid(
        name=name,
        rows=[
            [Cell(value, f"{name}R{number}C{column}") for column, value in enumerate(row, start=1)]
            for number, row in enumerate(rows, start=1)
        ],
    )


HEADER_ROW = ["场次", "人次", "合计", "累计"] + [None] * 15
NUMBERING_ROW = list(range(2, 21))


# --- xlsx -----------------------------------------------------------------------------------


def test_locate_xlsx_unit():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).header.unit_text == "水定镇"


def test_locate_xlsx_reporter():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).header.reporter == "李明"


def test_locate_xlsx_phone():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).header.phone == "138****0001"


def test_locate_xlsx_fill_date():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).header.fill_date == DAY


def test_locate_xlsx_fill_date_text():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).header.fill_date_text == "2023年12月22日"


@pytest.mark.parametrize("written", ["2023.12.22", "2023-12-22", "2023/12/22", "2023年12月22号"])
def test_locate_fill_date_writings(written):
    assert _xlsx_table([SAMPLE_ROWS["valid"]], date_text=written).header.fill_date == DAY


def test_locate_fill_date_excel_cell():
    assert _xlsx_table([SAMPLE_ROWS["valid"]], date_text=dt.date(2023, 12, 22)).header.fill_date == DAY


def test_locate_fill_date_serial_number():
    assert _xlsx_table([SAMPLE_ROWS["valid"]], date_text=45282).header.fill_date == DAY


def test_locate_xlsx_source():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).source == "Sheet1"


def test_locate_xlsx_one_data_row():
    assert len(_xlsx_table([SAMPLE_ROWS["valid"]]).rows) == 1


def test_locate_xlsx_row_ref():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).rows[0].ref == "Sheet1第8行"


def test_locate_xlsx_cell_ref():
    assert _xlsx_table([SAMPLE_ROWS["valid"]]).rows[0].cells[7].ref == "Sheet1!F8"


def test_locate_xlsx_values_by_column():
    row = _xlsx_table([SAMPLE_ROWS["valid"]]).rows[0]
    assert [row.cells[column].value for column in range(2, 21)] == list(SAMPLE_ROWS["valid"])


def test_locate_xlsx_remark():
    row = _xlsx_table([(*SAMPLE_ROWS["valid"], "含线上活动")]).rows[0]
    assert row.remark == "含线上活动"


def test_locate_xlsx_several_rows():
    table = _xlsx_table([SAMPLE_ROWS["valid"], SAMPLE_ROWS["blanks"]])
    assert [row.index for row in table.rows] == [1, 2]


def test_locate_skips_empty_rows_between():
    table = _xlsx_table([SAMPLE_ROWS["valid"], (), SAMPLE_ROWS["blanks"]])
    assert [row.ref for row in table.rows] == ["Sheet1第8行", "Sheet1第10行"]


def test_locate_notes_not_data():
    table = _xlsx_table([SAMPLE_ROWS["valid"]] * 5)
    assert len(table.rows) == 5


# --- docx -----------------------------------------------------------------------------------


def test_locate_docx_unit():
    assert _docx_table([SAMPLE_ROWS["valid"]], unit="清水河镇").header.unit_text == "清水河镇"


def test_locate_docx_reporter_rare_char():
    assert _docx_table([SAMPLE_ROWS["valid"]], reporter="赵喆").header.reporter == "赵喆"


def test_locate_docx_fill_date():
    assert _docx_table([SAMPLE_ROWS["valid"]]).header.fill_date == DAY


def test_locate_docx_one_data_row():
    assert len(_docx_table([SAMPLE_ROWS["valid"]]).rows) == 1


def test_locate_docx_row_ref():
    assert _docx_table([SAMPLE_ROWS["valid"]]).rows[0].ref == "表格1第6行"


def test_locate_docx_values_by_column():
    row = _docx_table([SAMPLE_ROWS["valid"]]).rows[0]
    assert row.cells[20].value == "56"


def test_locate_docx_remark():
    row = _docx_table([(*SAMPLE_ROWS["valid"], "本周含集市宣传")]).rows[0]
    assert row.remark == "本周含集市宣传"


# --- grids built by hand ----------------------------------------------------------------------


def test_locate_shifted_table():
    grid = _grid([["填报单位：芦草沟镇人民政府"], [None, *HEADER_ROW], ["序号", *NUMBERING_ROW], [1, *SAMPLE_ROWS["valid"]]])
    assert locate_tables([grid])[0].rows[0].cells[2].ref == "表R4C2"


def test_locate_unit_short_label():
    grid = _grid([["填报单位：芦草沟镇人民政府"], HEADER_ROW, NUMBERING_ROW, list(SAMPLE_ROWS["valid"])])
    assert locate_tables([grid])[0].header.unit_text == "芦草沟镇人民政府"


def test_locate_fill_line_split_over_cells():
    grid = _grid(
        [
            ["填报乡镇（单位）：", "兰干乡", "填报人：", "努尔兰", "联系电话", "159****0007", "填报时间：", dt.datetime(2023, 12, 22)],
            HEADER_ROW,
            NUMBERING_ROW,
            list(SAMPLE_ROWS["valid"]),
        ]
    )
    header = locate_tables([grid])[0].header
    assert (header.unit_text, header.reporter, header.phone, header.fill_date) == ("兰干乡", "努尔兰", "159****0007", DAY)


def test_locate_reporter_below_table():
    grid = _grid(
        [
            ["填报乡镇（单位）：兰干乡"],
            HEADER_ROW,
            NUMBERING_ROW,
            list(SAMPLE_ROWS["valid"]),
            ["填报人：努尔兰    联系电话：159****0007"],
        ]
    )
    assert locate_tables([grid])[0].header.reporter == "努尔兰"


def test_locate_signature_row_not_data():
    grid = _grid([HEADER_ROW, NUMBERING_ROW, list(SAMPLE_ROWS["valid"]), ["填报人：努尔兰"]])
    assert len(locate_tables([grid])[0].rows) == 1


def test_locate_numbers_as_text_numbering():
    grid = _grid([HEADER_ROW, [str(number) for number in NUMBERING_ROW], list(SAMPLE_ROWS["valid"])])
    assert len(locate_tables([grid])[0].rows) == 1


def test_locate_short_data_row():
    grid = _grid([HEADER_ROW, NUMBERING_ROW, [1, 12]])
    assert locate_tables([grid])[0].rows[0].cells[20].value is None


def test_locate_blank_template_date():
    table = locate_tables(read_xlsx(build_xlsx([], unit="", reporter="", phone="", date_text="    年   月   日")))[0]
    assert table.header.fill_date_text is None


def test_locate_blank_template_no_rows():
    table = locate_tables(read_xlsx(build_xlsx([])))[0]
    assert table.rows == []


def test_locate_second_grid():
    other = _grid([["序号", "活动所需专家"], [1, "农技"]], name="表格1")
    table_grid = _grid([HEADER_ROW, NUMBERING_ROW, list(SAMPLE_ROWS["valid"])], name="表格2")
    assert [table.source for table in locate_tables([other, table_grid])] == ["表格2"]


def test_locate_without_header_words():
    grid = _grid([["序号"], NUMBERING_ROW, list(SAMPLE_ROWS["valid"])])
    with pytest.raises(TableNotFound):
        locate_tables([grid])


def test_locate_incomplete_numbering():
    grid = _grid([HEADER_ROW, NUMBERING_ROW[:-1], list(SAMPLE_ROWS["valid"])])
    with pytest.raises(TableNotFound):
        locate_tables([grid])


def test_locate_no_grids_reason():
    with pytest.raises(TableNotFound) as caught:
        locate_tables([])
    assert "附件二" in caught.value.reason
