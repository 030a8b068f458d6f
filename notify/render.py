"""Render a notice into a subject, a plain-text body and an HTML body with Jinja2 templates.

Templates live in notify/templates as ``KIND.subject.j2``, ``KIND.txt.j2`` and ``KIND.html.j2``;
only the HTML ones are autoescaped. Dates read as a county office writes them:
``2023年12月22日 18:00（北京时间）``.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ingest.form import COLUMNS, column_label
from ingest.rules import RULES
from ingest.table import Violation
from notify.notices import BEIJING, Notice, ReceiptNotice, RejectionNotice

TEMPLATE_DIR = Path(__file__).parent / "templates"

BEIJING_OFFSET = dt.timedelta(hours=8)


@dataclass(frozen=True)
class Rendered:
    """A notice as mail content: a one-line subject and two alternative bodies."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class ViolationView:
    """One violation laid out for the templates, with the rule texts looked up."""

    number: int
    printed: str
    explanation: str
    fix: str
    location: str
    columns: list[tuple[str, str]]
    expected: str


def render_notice(notice: Notice, template_dir: Path | None = None, *, signature: str = "") -> Rendered:
    """Render ``notice`` with the templates in ``template_dir`` (the packaged ones by default).

    ``signature`` is the sender's name for the closing line, such as ``霍城县科协``.
    """
    environment = _environment(template_dir or TEMPLATE_DIR)
    context = {"notice": notice, "signature": signature, **_extra_context(notice)}

    subject = environment.get_template(f"{notice.kind}.subject.j2").render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        text=environment.get_template(f"{notice.kind}.txt.j2").render(context),
        html=environment.get_template(f"{notice.kind}.html.j2").render(context),
    )


@functools.lru_cache(maxsize=4)
def _environment(template_dir: Path) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(template_dir),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["cn_datetime"] = format_datetime
    return environment


def _extra_context(notice: Notice) -> dict[str, object]:
    if isinstance(notice, ReceiptNotice):
        return {"totals": [(column_label(column), notice.totals.get(column, 0)) for column in COLUMNS]}
    if isinstance(notice, RejectionNotice):
        return {"violations": [_violation_view(number, item) for number, item in enumerate(notice.violations, 1)]}
    return {}


def _violation_view(number: int, violation: Violation) -> ViolationView:
    rule = RULES[violation.rule]
    return ViolationView(
        number=number,
        printed=rule.printed,
        explanation=rule.explanation,
        fix=rule.fix,
        location=_location(violation),
        columns=[(column_label(column), _found_text(violation.found.get(column))) for column in violation.columns],
        expected=violation.expected,
    )


def _location(violation: Violation) -> str:
    # A rule about the whole table (V2) has row 0 and names the worksheet or Word table as cell.
    if violation.row <= 0:
        return violation.cell
    if violation.cell:
        return f"第{violation.row}行数据（单元格 {violation.cell}）"
    return f"第{violation.row}行数据"


def _found_text(value: int | str | None) -> str:
    if value is None or value == "":
        return "空白"
    if isinstance(value, int):
        return str(value)
    return f"“{value}”"


def format_datetime(moment: dt.datetime, tz: ZoneInfo = BEIJING) -> str:
    """Format an aware datetime as ``2023年12月22日 18:00（北京时间）`` in the zone ``tz``."""
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（{_zone_label(local)}）"


def _zone_label(local: dt.datetime) -> str:
    offset = local.utcoffset()
    if offset == BEIJING_OFFSET:
        return "北京时间"
    sign = "-" if offset < dt.timedelta(0) else "+"
    hours, seconds = divmod(int(abs(offset).total_seconds()), 3600)
    return f"UTC{sign}{hours:02d}:{seconds // 60:02d}"
