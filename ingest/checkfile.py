"""Reading and checking one file from disk, for the ``zhoubao check FILE`` command.

The command lets the county office see what zhoubao reads from an attachment and which rules it
breaks, without a mailbox or a database.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import PurePath

from ingest.containers import Limits
from ingest.demand import DemandForm
from ingest.message import Attachment
from ingest.pipeline import Converter, read_files

from ingest.form import COLUMNS, column_label
from ingest.locate import locate_tables
from ingest.readers import read_grids
from ingest.rules import RULES, check_table
from ingest.sniff import sniff_kind
from ingest.table import CheckedReport, FileProblem, ReportRow, Violation

_MISSING = "（未填写）"


def check_file(data: bytes, filename: str, *, first_week: bool = False) -> list[CheckedReport]:
    """Read the file, locate every 附件二 table in it and check each one.

    Raises UnreadableFile (or its subclass TableNotFound) with a Chinese ``reason``.
    """
    kind = sniff_kind(data, PurePath(filename).name)
    tables = locate_tables(read_grids(data, kind))
    return [check_table(table, first_week) for table in tables]


@dataclass
class FileCheck:
    """Result of ``zhoubao check`` on one file: checked weekly tables, demand forms, problems."""

    reports: list[CheckedReport]
    forms: list[DemandForm]
    problems: list[FileProblem]


def inspect_file(data: bytes, filename: str, *, convert: Converter | None = None,
                 first_week: bool = False) -> FileCheck:
    """Read a file as the service reads an attachment: archives unpacked, legacy files converted."""
    name = PurePath(filename).name
    attachment = Attachment(name, data, "application/octet-stream", sniff_kind(data, name))
    found, problems, _ = read_files([attachment], Limits(), convert)
    reports = [check_table(table, first_week) for item in found for table in item.tables]
    forms = [form for item in found for form in item.forms]
    return FileCheck(reports, forms, problems)


def format_demand_form(form: DemandForm) -> str:
    """Return the demand form (附件1) read, as Chinese text."""
    lines = [f"附件1 活动需求征集表（{form.source}）",
             f"填表单位：{form.unit_text or _MISSING}",
             f"联系人：{form.contact or _MISSING}　联系电话：{form.phone or _MISSING}",
             f"活动：共{len(form.rows)}项"]
    lines.extend(f"  {index}. {' '.join(row.content.split()) or _MISSING}"
                 for index, row in enumerate(form.rows, start=1))
    return "\n".join(lines) + "\n"


def format_report(report: CheckedReport) -> str:
    """Return what was read and every violation found, as Chinese text for the county office."""
    lines = [f"表格位置：{report.table.source}", *_header_lines(report), ""]

    lines.append(f"数据行：共{len(report.table.rows)}行")
    for row, values in zip(report.table.rows, report.values):
        lines.extend(_row_lines(row, values))

    lines.append("")
    lines.extend(_result_lines(report))
    return "\n".join(lines) + "\n"


def _header_lines(report: CheckedReport) -> list[str]:
    header = report.table.header
    return [
        f"填报乡镇（单位）：{header.unit_text or _MISSING}",
        f"填报人：{header.reporter or _MISSING}",
        f"联系电话：{header.phone or _MISSING}",
        f"填报时间：{_fill_date(header.fill_date, header.fill_date_text)}",
    ]


def _fill_date(date: dt.date | None, text: str | None) -> str:
    if date is not None and text == format_date(date):
        return text
    if date is not None:
        return f"{format_date(date)}（原文：{text}）"
    if text:
        return f"无法识别（原文：{text}）"
    return _MISSING


def format_date(date: dt.date) -> str:
    """Return the date as county documents write it, such as 2023年12月22日."""
    return f"{date.year}年{date.month}月{date.day}日"


def _row_lines(row: ReportRow, values: dict[int, int | None]) -> list[str]:
    lines = [f"  第{row.index}行（{row.ref}）："]
    for column in COLUMNS:
        value = values[column]
        text = str(value) if value is not None else f"无法识别（原文：{row.cells[column].value}）"
        lines.append(f"    {column_label(column)}：{text}")
    if row.remark:
        lines.append(f"    备注：{row.remark}")
    return lines


def _result_lines(report: CheckedReport) -> list[str]:
    if report.accepted:
        return ["检查结果：通过，未发现问题。"]

    lines = [f"检查结果：未通过，共{len(report.violations)}处问题："]
    for number, violation in enumerate(report.violations, start=1):
        lines.extend(_violation_lines(number, violation))
    return lines


def _violation_lines(number: int, violation: Violation) -> list[str]:
    rule = RULES[violation.rule]
    found = "，".join(f"{column}栏为{value}" for column, value in violation.found.items())
    subject = f"{violation.columns[0]}栏" if violation.columns else "本表"

    place = violation.cell
    if violation.row:
        place += f"（第{violation.row}行数据）"

    lines = [f"  {number}. 【{rule.printed}】位置：{place}"]
    if found:
        lines.append(f"     填写的是：{found}")
    lines.extend(
        [
            f"     {subject}{violation.expected}。",
            f"     说明：{rule.explanation}",
            f"     修改方法：{rule.fix}",
        ]
    )
    return lines
