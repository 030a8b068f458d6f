"""locate_tables: finding 附件二 in grids and reading its 填报 line and data rows."""

import datetime as dt

import pytest

from ingest.errors import TableNotFound
from ingest.locate import locate_tables
from ingest.readers.docx import read_docx
from ingest.readers.xlsx import read_xlsx
from ingest.table import Cell, Grid
from ingest.values import parse_count
from service.samples.tables import (
    NOTICE,
    SAMPLE_ROWS,
    TITLE,
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


# --- layouts of clerks' copies ----------------------------------------------------------------

VALID = SAMPLE_ROWS["valid"]
BLANKS = SAMPLE_ROWS["blanks"]
LEADING = ("序号", "填报单位")


def _values(row):
    return [row.cells[column].value for column in range(2, 21)]


def _layout_table(layout, rows=(VALID,), builder=build_xlsx, **options):
    reader = read_xlsx if builder is build_xlsx else read_docx
    return locate_tables(reader(builder(list(rows), layout=layout, **options)))[0]


def test_layout_leading_columns_ref():
    table = _layout_table(Layout(leading=LEADING))
    assert table.rows[0].cells[2].ref == "Sheet1!C8"


def test_layout_leading_columns_values():
    table = _layout_table(Layout(leading=LEADING))
    assert _values(table.rows[0]) == list(VALID)


def test_layout_leading_columns_unit():
    # The extra column 填报单位 in the header is not the 填报 line.
    assert _layout_table(Layout(leading=LEADING)).header.unit_text == "水定镇"


def test_layout_leading_columns_docx():
    table = _layout_table(Layout(leading=LEADING), builder=build_docx)
    assert table.rows[0].cells[2].ref == "表格1第6行第3列"


def test_layout_trailing_column_remark():
    table = _layout_table(Layout(trailing=("填报单位",)), rows=[(*VALID, "含线上活动")])
    assert table.rows[0].remark == "含线上活动"


def test_layout_trailing_column_last_value():
    table = _layout_table(Layout(trailing=("填报单位",)))
    assert table.rows[0].cells[20].ref == "Sheet1!S8"


def test_layout_numbering_from_one():
    table = _layout_table(Layout(leading=LEADING, numbering=Numbering.FROM_ONE))
    assert table.rows[0].cells[2].ref == "Sheet1!C8"


def test_layout_renumbered_row_uses_words():
    # The clerk numbered the form's columns 1..19 and 备注 20; the header words decide.
    table = _layout_table(Layout(numbering=Numbering.SHIFTED))
    assert table.rows[0].cells[2].ref == "Sheet1!A8"


def test_layout_renumbered_row_remark():
    table = _layout_table(Layout(numbering=Numbering.SHIFTED), rows=[(*VALID, "含线上活动")])
    assert table.rows[0].remark == "含线上活动"


def test_layout_no_numbering_first_row():
    table = _layout_table(Layout(numbering=Numbering.NONE))
    assert table.rows[0].ref == "Sheet1第7行"


def test_layout_no_numbering_values():
    table = _layout_table(Layout(numbering=Numbering.NONE))
    assert _values(table.rows[0]) == list(VALID)


def test_layout_no_numbering_remark():
    table = _layout_table(Layout(numbering=Numbering.NONE), rows=[(*VALID, "含线上活动")])
    assert table.rows[0].remark == "含线上活动"


def test_layout_no_numbering_leading():
    table = _layout_table(Layout(leading=LEADING, numbering=Numbering.NONE))
    assert table.rows[0].cells[2].ref == "Sheet1!C7"


def test_layout_no_numbering_docx():
    table = _layout_table(Layout(numbering=Numbering.NONE), builder=build_docx)
    assert table.rows[0].cells[20].value == "56"


def test_layout_flat_header_no_numbering():
    table = _layout_table(Layout(header=HeaderStyle.FLAT, numbering=Numbering.NONE, leading=("序号",)))
    assert table.rows[0].cells[2].ref == "Sheet1!B4"


def test_layout_flat_header_docx():
    table = _layout_table(Layout(header=HeaderStyle.FLAT, numbering=Numbering.NONE), builder=build_docx)
    assert _values(table.rows[0]) == [str(value) for value in VALID]


@pytest.mark.parametrize("builder", [build_xlsx, build_docx])
def test_layout_two_row_header(builder):
    table = _layout_table(Layout(header=HeaderStyle.TWO_ROWS), builder=builder)
    assert [parse_count(value) for value in _values(table.rows[0])] == list(VALID)


@pytest.mark.parametrize("builder", [build_xlsx, build_docx])
def test_layout_two_row_header_no_numbering(builder):
    table = _layout_table(Layout(header=HeaderStyle.TWO_ROWS, numbering=Numbering.NONE, leading=LEADING),
                          builder=builder)
    assert [parse_count(value) for value in _values(table.rows[0])] == list(VALID)


def test_layout_notice_and_origin():
    table = _layout_table(Layout(notice=NOTICE, origin=(4, 3)))
    assert table.rows[0].cells[2].ref == "Sheet1!C13"


def test_layout_notice_fill_line():
    table = _layout_table(Layout(notice=NOTICE, origin=(4, 3)), reporter="马晓东")
    assert table.header.reporter == "马晓东"


def test_layout_two_rows_read():
    table = _layout_table(Layout(leading=LEADING, numbering=Numbering.NONE), rows=[VALID, BLANKS])
    assert [row.index for row in table.rows] == [1, 2]


# --- 合计 rows ----------------------------------------------------------------------------------


def test_total_not_a_data_row():
    table = _layout_table(Layout(leading=("序号",), total=True), rows=[VALID, BLANKS])
    assert len(table.rows) == 2


def test_total_found():
    table = _layout_table(Layout(leading=("序号",), total=True), rows=[VALID, BLANKS])
    assert table.total.ref == "Sheet1第13行"


def test_total_index_zero():
    table = _layout_table(Layout(leading=("序号",), total=True), rows=[VALID, BLANKS])
    assert table.total.index == 0


def test_total_values():
    table = _layout_table(Layout(leading=("序号",), total=True), rows=[VALID, BLANKS])
    assert table.total.cells[7].value == 892 + 618


def test_total_label_in_column_two():
    # Without extra columns the clerk writes 合计 where column 2 would be.
    table = _layout_table(Layout(total=True), rows=[VALID, BLANKS])
    assert 2 not in table.total.cells


def test_total_docx():
    table = _layout_table(Layout(total=True), rows=[VALID, BLANKS], builder=build_docx)
    assert table.total.cells[20].value == str(56 + 64)


def test_total_only_row_is_data():
    grid = _grid([HEADER_ROW, NUMBERING_ROW, ["合计", *VALID[1:]]])
    assert len(locate_tables([grid])[0].rows) == 1


def test_total_only_row_no_total():
    grid = _grid([HEADER_ROW, NUMBERING_ROW, ["合计", *VALID[1:]]])
    assert locate_tables([grid])[0].total is None


def test_total_above_data_rows():
    grid = _grid([HEADER_ROW, ["序号", *NUMBERING_ROW], ["合计", *VALID], [1, *VALID]])
    assert locate_tables([grid])[0].total.ref == "表第3行"


def test_blank_total_row_ignored():
    grid = _grid([HEADER_ROW, ["序号", *NUMBERING_ROW], [1, *VALID], [2, *BLANKS], ["合计"]])
    assert locate_tables([grid])[0].total is None


def test_no_total_by_default():
    assert _layout_table(Layout()).total is None


# --- filler rows and values as written --------------------------------------------------------


def test_crossed_out_rows_skipped():
    table = _layout_table(Layout(), rows=[VALID, ["/"] * 19, ["—"] * 19])
    assert len(table.rows) == 1


def test_crossed_out_only_row_read():
    table = _layout_table(Layout(), rows=[["/"] * 19, ["/"] * 19])
    assert table.rows[0].ref == "Sheet1第8行"


def test_values_with_units_only_row():
    # Every cell carries a unit, so the row has no plain number, yet it is data, not a header.
    written = [f"{value}场次" if column % 2 == 0 else f"{value}人次" for column, value in enumerate(VALID)]
    table = _layout_table(Layout(numbering=Numbering.NONE), rows=[written, written])
    assert len(table.rows) == 2


def test_values_as_written_docx():
    table = _layout_table(Layout(), rows=[SAMPLE_ROWS["as_written"]], builder=build_docx)
    assert table.rows[0].cells[5].value == "2,385人次"


# --- several tables and weeks ------------------------------------------------------------------


def _two_sheets():
    return build_workbook({
        "第2周": [Form([VALID], date_text="2023年12月15日")],
        "第3周": [Form([BLANKS])],
    })


def test_sheets_each_table():
    assert [table.source for table in locate_tables(read_xlsx(_two_sheets()))] == ["第2周", "第3周"]


def test_sheets_week_hints():
    assert [table.week_hint for table in locate_tables(read_xlsx(_two_sheets()))] == [2, 3]


def test_sheets_own_fill_dates():
    dates = [table.header.fill_date for table in locate_tables(read_xlsx(_two_sheets()))]
    assert dates == [dt.date(2023, 12, 15), DAY]


def _stacked_forms():
    return build_workbook({
        "Sheet1": [
            Form([VALID], title=f"{TITLE}（第2周）", date_text="2023年12月15日"),
            Form([BLANKS, VALID], unit="惠远镇", title=f"{TITLE}（第3周）", layout=Layout(origin=(3, 1))),
        ],
    })


def test_stacked_forms_found():
    assert len(locate_tables(read_xlsx(_stacked_forms()))) == 2


def test_stacked_forms_rows_apart():
    first, second = locate_tables(read_xlsx(_stacked_forms()))
    assert (len(first.rows), len(second.rows)) == (1, 2)


def test_stacked_forms_week_hints():
    assert [table.week_hint for table in locate_tables(read_xlsx(_stacked_forms()))] == [2, 3]


def test_stacked_forms_units():
    units = [table.header.unit_text for table in locate_tables(read_xlsx(_stacked_forms()))]
    assert units == ["水定镇", "惠远镇"]


def test_stacked_forms_first_date():
    assert locate_tables(read_xlsx(_stacked_forms()))[0].header.fill_date == dt.date(2023, 12, 15)


def test_week_hint_absent():
    assert _xlsx_table([VALID]).week_hint is None


def test_week_hint_docx_title():
    table = _docx_table([VALID], title=f"{TITLE}（第三周）")
    assert table.week_hint == 3


# --- Word files around the table ----------------------------------------------------------------


def test_word_layout_tables_source():
    table = _docx_table([VALID], wrapping=WordWrapping.LAYOUT_TABLES)
    assert table.source == "表格2"


def test_word_layout_tables_unit():
    table = _docx_table([VALID], unit="清水河镇", wrapping=WordWrapping.LAYOUT_TABLES)
    assert table.header.unit_text == "清水河镇"


def test_word_layout_tables_date():
    table = _docx_table([VALID], wrapping=WordWrapping.LAYOUT_TABLES)
    assert table.header.fill_date == DAY


def test_word_nested_source():
    table = _docx_table([VALID], wrapping=WordWrapping.NESTED)
    assert table.source == "表格1中的表格1"


def test_word_nested_values():
    table = _docx_table([VALID], wrapping=WordWrapping.NESTED)
    assert _values(table.rows[0]) == [str(value) for value in VALID]


def test_word_nested_reporter():
    table = _docx_table([VALID], reporter="赵喆", wrapping=WordWrapping.NESTED)
    assert table.header.reporter == "赵喆"


def test_demand_form_not_weekly():
    with pytest.raises(TableNotFound):
        locate_tables(read_docx(build_demand_docx([("农技专家2名", "种植户", "12月", "线下", "果树冬剪", "挂图")])))


# --- numbering rows as typed ------------------------------------------------------------------


def test_numbering_in_brackets():
    grid = _grid([HEADER_ROW, [f"({number})" for number in NUMBERING_ROW], list(VALID)])
    assert len(locate_tables([grid])[0].rows) == 1


def test_numbering_with_gaps():
    # A Word number merged over two grid columns leaves a blank position after it.
    spread = [value for number in NUMBERING_ROW for value in (number, None)]
    data = [value for number in VALID for value in (number, None)]
    grid = _grid([HEADER_ROW, spread, data])
    assert _values(locate_tables([grid])[0].rows[0]) == list(VALID)


def test_next_title_ends_rows():
    grid = _grid([HEADER_ROW, NUMBERING_ROW, list(VALID), [TITLE], HEADER_ROW, NUMBERING_ROW, list(BLANKS)])
    assert [len(table.rows) for table in locate_tables([grid])] == [1, 1]
