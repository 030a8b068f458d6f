"""The checks of a weekly table: the 表间关系 printed in the 填表说明 (R1..R5), the value checks
(V1, V2) and the check of a 合计 row against the data rows (T1).

R3 and R4 compare this week with the running total (累计). In the campaign's first reporting week
the running total is this week's number, so equality is allowed then. Every "<" rule also holds
when both sides are 0: a township with no activity this week reports 0 in 7 and in 8.
"""

from dataclasses import dataclass

from ingest.table import CheckedReport, ReportRow, RuleId, Violation, WeeklyTable
from ingest.values import parse_count


@dataclass(frozen=True)
class RuleText:
    """The wording of one rule for clerks: as the form prints it, what it means, how to fix it."""

    printed: str
    explanation: str
    fix: str


RULES: dict[RuleId, RuleText] = {
    RuleId.R1: RuleText(
        printed="6栏=9+11+13+15+17+19",
        explanation="本周合计场次（6栏）应等于六类活动的场次（9、11、13、15、17、19栏）之和。",
        fix="请逐项核对各类活动的场次，使6栏等于9、11、13、15、17、19栏之和；未开展的活动填0或留空。",
    ),
    RuleId.R2: RuleText(
        printed="7栏=10+12+14+16+18+20",
        explanation="本周合计人次（7栏）应等于六类活动的人次（10、12、14、16、18、20栏）之和。",
        fix="请逐项核对各类活动的人次，使7栏等于10、12、14、16、18、20栏之和；未开展的活动填0或留空。",
    ),
    RuleId.R3: RuleText(
        printed="6栏<4栏",
        explanation="累计场次（4栏）包含以前各周和本周的场次，所以本周合计场次（6栏）应小于4栏。",
        fix="请核对4栏是否填写了累计数：4栏应为上周报送的累计场次加上本周场次。",
    ),
    RuleId.R4: RuleText(
        printed="7栏<5栏",
        explanation="累计人次（5栏）包含以前各周和本周的人次，所以本周合计人次（7栏）应小于5栏。",
        fix="请核对5栏是否填写了累计数：5栏应为上周报送的累计人次加上本周人次。",
    ),
    RuleId.R5: RuleText(
        printed="8栏<7栏",
        explanation="科技人员参与人数（8栏）是本周参与人次（7栏）中的一部分，应小于7栏。",
        fix="请核对8栏和7栏：8栏只填本周参加活动的科技人员人数，7栏填本周全部参与人次。",
    ),
    RuleId.V1: RuleText(
        printed="各栏应填写不小于0的整数",
        explanation="表中2至20栏只能填写整数（0、1、2……），不能填写小数、负数、文字或日期；空白按0计算。",
        fix="请把该单元格改为整数，没有的填0或留空；需要说明的情况请写在备注栏。",
    ),
    RuleId.V2: RuleText(
        printed="至少填写一行数据",
        explanation="表中表头和栏目序号行（2至20）下面没有填写任何数据。",
        fix="请在表头和栏目序号行下面填写本乡镇本周的数据，保存后重新发送。",
    ),
    RuleId.T1: RuleText(
        printed="合计行=各数据行之和",
        explanation="表中合计行的每一栏都应等于各数据行同一栏之和。",
        fix="请逐栏核对合计行，使其等于各数据行之和；也可以删去合计行，只保留各行数据。",
    ),
}

_SUMS = {
    RuleId.R1: (6, (9, 11, 13, 15, 17, 19)),
    RuleId.R2: (7, (10, 12, 14, 16, 18, 20)),
}
_LESS_THAN = {
    RuleId.R3: (6, 4),
    RuleId.R4: (7, 5),
    RuleId.R5: (8, 7),
}
_FIRST_WEEK_EQUAL = {RuleId.R3, RuleId.R4}

Values = dict[int, int | None]


def check_table(table: WeeklyTable, first_week: bool) -> CheckedReport:
    """Convert the table's cells to counts and check every rule on every data row.

    Violations are ordered by rule (R1..R5, V1, V2, T1 as RuleId lists them), then by row. A rule
    is not checked on a row where one of its cells is not a count: V1 reports that cell instead.
    The 合计 row is checked by V1 and T1 only, and its violations have row 0.
    """
    values = [_row_values(row) for row in table.rows]

    violations: list[Violation] = []
    for rule in RuleId:
        if rule is RuleId.V2:
            violations.extend(_check_has_rows(table))
            continue
        if rule is RuleId.T1:
            violations.extend(_check_total(table, values))
            continue

        for row, row_values in zip(table.rows, values):
            violations.extend(_check(rule, row, row_values, first_week))
        if rule is RuleId.V1 and table.total is not None:
            violations.extend(_check_whole_numbers(table.total, _row_values(table.total)))

    return CheckedReport(table=table, values=values, violations=violations)


def _row_values(row: ReportRow) -> Values:
    return {column: parse_count(cell.value) for column, cell in row.cells.items()}


def _check(rule: RuleId, row: ReportRow, values: Values, first_week: bool) -> list[Violation]:
    if rule is RuleId.V1:
        return _check_whole_numbers(row, values)
    if rule in _SUMS:
        return _check_sum(rule, row, values)
    return _check_less_than(rule, row, values, first_week and rule in _FIRST_WEEK_EQUAL)


def _check_sum(rule: RuleId, row: ReportRow, values: Values) -> list[Violation]:
    total_column, parts = _SUMS[rule]
    columns = (total_column, *parts)
    if any(values[column] is None for column in columns):
        return []

    total = sum(values[column] for column in parts)
    if values[total_column] == total:
        return []

    return [
        Violation(
            rule=rule,
            row=row.index,
            cell=row.cells[total_column].ref,
            columns=columns,
            found={column: values[column] for column in columns},
            expected=f"应等于{total}，即{'+'.join(str(column) for column in parts)}之和",
        )
    ]


def _check_less_than(rule: RuleId, row: ReportRow, values: Values, allow_equal: bool) -> list[Violation]:
    small_column, big_column = _LESS_THAN[rule]
    small, big = values[small_column], values[big_column]
    if small is None or big is None:
        return []

    if small < big or small == big == 0 or (allow_equal and small == big):
        return []

    relation = "应不大于" if allow_equal else "应小于"
    return [
        Violation(
            rule=rule,
            row=row.index,
            cell=row.cells[small_column].ref,
            columns=(small_column, big_column),
            found={small_column: small, big_column: big},
            expected=f"{relation}{big_column}栏（{big_column}栏现为{big}）",
        )
    ]


def _check_whole_numbers(row: ReportRow, values: Values) -> list[Violation]:
    return [
        Violation(
            rule=RuleId.V1,
            row=row.index,
            cell=row.cells[column].ref,
            columns=(column,),
            found={column: _as_written(row.cells[column].value)},
            expected="应为不小于0的整数",
        )
        for column, value in values.items()
        if value is None
    ]


def _check_has_rows(table: WeeklyTable) -> list[Violation]:
    if table.rows:
        return []
    return [
        Violation(
            rule=RuleId.V2,
            row=0,
            cell=table.source,
            columns=(),
            found={},
            expected="表头下面至少应有一行数据",
        )
    ]


def _check_total(table: WeeklyTable, values: list[Values]) -> list[Violation]:
    """Compare each count of the 合计 row with the sum of that column over the data rows.

    A column with a cell that is not a count is not compared: V1 reports that cell instead.
    """
    total = table.total
    if total is None:
        return []

    found = _row_values(total)
    violations = []
    for column, value in found.items():
        column_values = [row[column] for row in values]
        if value is None or None in column_values or value == sum(column_values):
            continue

        column_sum = sum(column_values)
        violations.append(
            Violation(
                rule=RuleId.T1,
                row=total.index,
                cell=total.cells[column].ref,
                columns=(column,),
                found={column: value},
                expected=f"应等于{column_sum}，即{len(values)}行数据的{column}栏之和",
            )
        )
    return violations


def _as_written(value: object) -> str:
    return str(value).strip()
