"""check_table and the check command's report: rules R1..R5, V1 and V2 on real files."""

import pytest

from ingest.checkfile import check_file, format_report
from ingest.errors import UnreadableFile
from ingest.rules import RULES, check_table
from ingest.table import RuleId, WeeklyTable, ReportHeader
from service.samples.tables import SAMPLE_ROWS, Layout, build_docx, build_xlsx


def _check_xlsx(rows, first_week=False, **options):
    return check_file(build_xlsx(rows, **options), "周统计表.xlsx", first_week=first_week)[0]


def _rules(report):
    return [violation.rule for violation in report.violations]


def _with(row, **changes):
    values = list(SAMPLE_ROWS[row])
    for name, value in changes.items():
        values[int(name[1:]) - 2] = value
    return values


# --- sample rows ----------------------------------------------------------------------------


def test_rules_valid_row_accepted():
    assert _check_xlsx([SAMPLE_ROWS["valid"]]).accepted


def test_rules_blanks_count_as_zero():
    assert _check_xlsx([SAMPLE_ROWS["blanks"]]).accepted


def test_rules_text_numbers_accepted():
    assert _check_xlsx([SAMPLE_ROWS["valid"]], as_text=True).accepted


def test_rules_r1_broken():
    assert _rules(_check_xlsx([SAMPLE_ROWS["r1_broken"]])) == [RuleId.R1]


def test_rules_r2_r5_broken():
    assert _rules(_check_xlsx([SAMPLE_ROWS["r2_r5_broken"]])) == [RuleId.R2, RuleId.R5]


def test_rules_r3_r4_broken():
    assert _rules(_check_xlsx([SAMPLE_ROWS["r3_r4_broken"]])) == [RuleId.R3, RuleId.R4]


def test_rules_r3_r4_text_totals():
    row = _with("r3_r4_broken", c4="9", c5="356")
    assert _rules(_check_xlsx([row])) == [RuleId.R3, RuleId.R4]


def test_rules_first_week_allows_equal():
    assert _check_xlsx([SAMPLE_ROWS["r3_r4_broken"]], first_week=True).accepted


def test_rules_first_week_still_strict_r5():
    row = _with("valid", c8=892)
    assert _rules(_check_xlsx([row], first_week=True)) == [RuleId.R5]


def test_rules_first_week_greater_fails():
    row = _with("valid", c4=14)
    assert _rules(_check_xlsx([row], first_week=True)) == [RuleId.R3]


def test_rules_docx_r2_r5():
    report = check_file(build_docx([SAMPLE_ROWS["r2_r5_broken"]]), "兰干乡.docx")[0]
    assert _rules(report) == [RuleId.R2, RuleId.R5]


def test_rules_values_converted():
    assert _check_xlsx([SAMPLE_ROWS["blanks"]], as_text=True).values[0][15] == 0


def test_rules_totals():
    report = _check_xlsx([SAMPLE_ROWS["valid"], SAMPLE_ROWS["valid"]])
    assert report.totals()[7] == 2 * 892


# --- violation contents ---------------------------------------------------------------------


def test_violation_r1_cell():
    assert _check_xlsx([SAMPLE_ROWS["r1_broken"]]).violations[0].cell == "Sheet1!E8"


def test_violation_r1_columns():
    assert _check_xlsx([SAMPLE_ROWS["r1_broken"]]).violations[0].columns == (6, 9, 11, 13, 15, 17, 19)


def test_violation_r1_found():
    found = _check_xlsx([SAMPLE_ROWS["r1_broken"]]).violations[0].found
    assert found == {6: 10, 9: 3, 11: 2, 13: 1, 15: 1, 17: 1, 19: 1}


def test_violation_r1_expected():
    assert _check_xlsx([SAMPLE_ROWS["r1_broken"]]).violations[0].expected == "应等于9，即9+11+13+15+17+19之和"


def test_violation_r2_cell():
    assert _check_xlsx([SAMPLE_ROWS["r2_r5_broken"]]).violations[0].cell == "Sheet1!F8"


def test_violation_r5_found():
    assert _check_xlsx([SAMPLE_ROWS["r2_r5_broken"]]).violations[1].found == {8: 85, 7: 64}


def test_violation_r3_expected():
    assert _check_xlsx([SAMPLE_ROWS["r3_r4_broken"]]).violations[0].expected == "应小于4栏（4栏现为9）"


def test_violation_row_number():
    report = _check_xlsx([SAMPLE_ROWS["valid"], SAMPLE_ROWS["r1_broken"]])
    assert report.violations[0].row == 2


def test_violation_docx_cell():
    report = check_file(build_docx([SAMPLE_ROWS["r2_r5_broken"]]), "兰干乡.docx")[0]
    assert report.violations[0].cell == "表格1第6行第6列"


# --- "<" rules with zeros ---------------------------------------------------------------------


def test_less_than_both_zero_holds():
    row = [1, 3] + [0] * 17
    assert _check_xlsx([row]).accepted


def test_less_than_zero_total_fails():
    row = _with("valid", c4=0)
    assert _rules(_check_xlsx([row])) == [RuleId.R3]


def test_less_than_blank_row_parts():
    row = [1, 3, 5, 40] + [None] * 15
    assert _check_xlsx([row]).accepted


# --- V1 and V2 ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["三场", "2.5", "-1", 2.5, -1, "3人左右"])
def test_v1_not_whole_number(bad):
    row = _with("valid", c9=bad)
    assert _rules(_check_xlsx([row])) == [RuleId.V1]


def test_v1_found_as_written():
    row = _with("valid", c9="三场")
    assert _check_xlsx([row]).violations[0].found == {9: "三场"}


def test_v1_cell():
    row = _with("valid", c9="三场")
    assert _check_xlsx([row]).violations[0].cell == "Sheet1!H8"


def test_v1_value_is_none():
    row = _with("valid", c9="三场")
    assert _check_xlsx([row]).values[0][9] is None


def test_v1_after_rules():
    row = _with("r1_broken", c20="很多")
    assert _rules(_check_xlsx([row])) == [RuleId.R1, RuleId.V1]


def test_v2_no_data_rows():
    assert _rules(_check_xlsx([])) == [RuleId.V2]


def test_v2_cell_names_source():
    table = WeeklyTable(source="表格1", header=ReportHeader(), rows=[])
    assert check_table(table, first_week=False).violations[0].cell == "表格1"


def test_order_by_rule_then_row():
    report = _check_xlsx([SAMPLE_ROWS["r2_r5_broken"], SAMPLE_ROWS["r1_broken"]])
    assert [(violation.rule, violation.row) for violation in report.violations] == [
        (RuleId.R1, 2),
        (RuleId.R2, 1),
        (RuleId.R5, 1),
    ]


# --- T1: the 合计 row -----------------------------------------------------------------------------

TWO_ROWS = [SAMPLE_ROWS["valid"], SAMPLE_ROWS["blanks"]]
SUMS = [a + (b or 0) for a, b in zip(SAMPLE_ROWS["valid"], SAMPLE_ROWS["blanks"])]


def _check_total(total, rows=TWO_ROWS):
    return _check_xlsx(rows, layout=Layout(leading=("序号",), total=total))


def _sums(**changes):
    values = list(SUMS)
    for name, value in changes.items():
        values[int(name[1:]) - 2] = value
    return values


def test_t1_matching_total_accepted():
    assert _check_total(True).accepted


def test_t1_total_not_counted():
    assert _check_total(True).totals()[7] == 892 + 618


def test_t1_values_exclude_total():
    assert len(_check_total(True).values) == 2


def test_t1_wrong_total():
    assert _rules(_check_total(_sums(c7=1500))) == [RuleId.T1]


def test_t1_cell():
    assert _check_total(_sums(c7=1500)).violations[0].cell == "Sheet1!G13"


def test_t1_row_zero():
    assert _check_total(_sums(c7=1500)).violations[0].row == 0


def test_t1_found():
    assert _check_total(_sums(c7=1500)).violations[0].found == {7: 1500}


def test_t1_expected():
    assert _check_total(_sums(c7=1500)).violations[0].expected == "应等于1510，即2行数据的7栏之和"


def test_t1_one_per_column():
    assert len(_check_total(_sums(c4=1, c5=2)).violations) == 2


def test_t1_blank_total_cell():
    assert _check_total(_sums(c20=None)).violations[0].found == {20: 0}


def test_t1_skips_unreadable_column():
    rows = [_with("valid", c9="三场"), SAMPLE_ROWS["blanks"]]
    assert _rules(_check_total(_sums(), rows=rows)) == [RuleId.V1]


def test_t1_unreadable_total_cell():
    assert _rules(_check_total(_sums(c9="很多"))) == [RuleId.V1]


def test_t1_unreadable_total_row_zero():
    assert _check_total(_sums(c9="很多")).violations[0].row == 0


def test_t1_label_column_skipped():
    # The label 合计 sits where column 2 would be and is not a value.
    report = _check_xlsx(TWO_ROWS, layout=Layout(total=True))
    assert report.accepted


def test_t1_after_other_rules():
    rows = [SAMPLE_ROWS["r1_broken"], SAMPLE_ROWS["valid"]]
    sums = [a + b for a, b in zip(*rows)]
    sums[0] = 9
    assert _rules(_check_total(sums, rows=rows)) == [RuleId.R1, RuleId.T1]


# --- values as clerks write them ------------------------------------------------------------------


def test_values_as_written_accepted():
    report = check_file(build_docx([SAMPLE_ROWS["as_written"]]), "周报.docx")[0]
    assert report.accepted


def test_values_as_written_converted():
    report = check_file(build_docx([SAMPLE_ROWS["as_written"]]), "周报.docx")[0]
    assert [report.values[0][column] for column in range(2, 21)] == list(SAMPLE_ROWS["valid"])


def test_values_dashes_zero():
    assert _check_xlsx([SAMPLE_ROWS["dashes"]]).values[0][16] == 0


def test_values_dashes_accepted():
    assert _check_xlsx([SAMPLE_ROWS["dashes"]]).accepted


@pytest.mark.parametrize("bad", ["-2", "1.5", "1/2", "若干"])
def test_values_bad_names_cell(bad):
    report = check_file(build_docx([_with("valid", c10=bad)]), "周报.docx")[0]
    assert report.violations[-1].cell == "表格1第6行第9列"


# --- catalogue ------------------------------------------------------------------------------


def test_catalogue_covers_every_rule():
    assert set(RULES) == set(RuleId)


@pytest.mark.parametrize(
    ("rule", "printed"),
    [
        (RuleId.R1, "6栏=9+11+13+15+17+19"),
        (RuleId.R2, "7栏=10+12+14+16+18+20"),
        (RuleId.R3, "6栏<4栏"),
        (RuleId.R4, "7栏<5栏"),
        (RuleId.R5, "8栏<7栏"),
    ],
)
def test_catalogue_printed_text(rule, printed):
    assert RULES[rule].printed == printed


def test_catalogue_texts_present():
    assert all(text.explanation and text.fix for text in RULES.values())


# --- check command --------------------------------------------------------------------------


def test_report_shows_unit():
    text = format_report(_check_xlsx([SAMPLE_ROWS["valid"]], unit="惠远镇"))
    assert "填报乡镇（单位）：惠远镇" in text


def test_report_shows_date():
    text = format_report(_check_xlsx([SAMPLE_ROWS["valid"]], date_text="2023.12.22"))
    assert "填报时间：2023年12月22日（原文：2023.12.22）" in text


def test_report_shows_column_value():
    text = format_report(_check_xlsx([SAMPLE_ROWS["valid"]]))
    assert "7栏（本周合计人次）：892" in text


def test_report_accepted_line():
    assert "检查结果：通过" in format_report(_check_xlsx([SAMPLE_ROWS["valid"]]))


def test_report_lists_violation():
    text = format_report(_check_xlsx([SAMPLE_ROWS["r1_broken"]]))
    assert "【6栏=9+11+13+15+17+19】位置：Sheet1!E8" in text


def test_report_unreadable_value():
    text = format_report(_check_xlsx([_with("valid", c9="三场")]))
    assert "无法识别（原文：三场）" in text


def test_check_file_pdf():
    with pytest.raises(UnreadableFile) as caught:
        check_file(b"%PDF-1.7\n", "周报.pdf")
    assert "PDF" in caught.value.reason
