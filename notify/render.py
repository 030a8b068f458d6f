"""Render a notice into a subject, a plain-text body and an HTML body with Jinja2 templates.

Templates live in notify/templates as ``KIND.subject.j2``, ``KIND.txt.j2`` and ``KIND.html.j2``;
only the HTML ones are autoescaped. A folder passed to :func:`render_notice` overrides any of them
by file name, and the packaged templates fill in the rest. Dates read as a county office writes
them: ``2023年12月22日 18:00（北京时间）``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    select_autoescape,
)

from ingest.form import COLUMNS, column_label
from ingest.rules import RULES
from ingest.table import Violation
from notify.notices import (
    BEIJING,
    AlertNotice,
    ChaseNotice,
    DigestNotice,
    Notice,
    OneOffDigestNotice,
    ReceiptNotice,
    RejectionNotice,
    ReturnedUnit,
)

logger = logging.getLogger(__name__)

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
    """Render ``notice`` with the templates in ``template_dir``, then the packaged ones.

    A template file missing from ``template_dir`` (or every one, when it is None) comes from
    notify/templates, so an admin can override only the body of one kind. ``signature`` is the
    sender's name for the closing line, such as ``霍城县科协``. When the admin's template fails
    (a variable it names does not exist, say), the packaged templates render the notice, so
    the mail still goes out, and the error is logged.
    """
    if template_dir is None:
        return _render(notice, None, signature)
    try:
        return _render(notice, template_dir, signature)
    except TemplateError as err:
        logger.error("templates %s: %s failed, packaged templates used instead: %s",
                     template_dir, getattr(notice, "template", notice.kind), err)
        return _render(notice, None, signature)


def _render(notice: Notice, template_dir: Path | None, signature: str) -> Rendered:
    environment = _environment(template_dir)
    context = {"notice": notice, "signature": signature, **_extra_context(notice)}
    # A notice class may share its kind with another and name templates of its own.
    name = getattr(notice, "template", str(notice.kind))
    subject = environment.get_template(f"{name}.subject.j2").render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        text=environment.get_template(f"{name}.txt.j2").render(context),
        html=environment.get_template(f"{name}.html.j2").render(context),
    )


def check_templates(template_dir: Path) -> list[str]:
    """Return one Chinese line per problem of the admin's template folder; empty when all parse.

    A file must carry the name of a packaged template and parse as Jinja2.
    """
    packaged = {path.name for path in TEMPLATE_DIR.glob("*.j2")}
    environment = _environment(Path(template_dir))
    problems = []
    for path in sorted(Path(template_dir).glob("*.j2")):
        if path.name not in packaged:
            problems.append(f"{path.name}：系统没有这个名称的模板，请对照安装目录 notify/templates 中的文件名。")
            continue
        try:
            environment.get_template(path.name)
        except TemplateSyntaxError as err:
            problems.append(f"{path.name} 第{err.lineno}行：模板语法有误（{err.message}）。")
    return problems


@functools.lru_cache(maxsize=4)
def _environment(template_dir: Path | None) -> Environment:
    loaders = [FileSystemLoader(TEMPLATE_DIR)]
    if template_dir is not None and Path(template_dir) != TEMPLATE_DIR:
        loaders.insert(0, FileSystemLoader(template_dir))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["cn_datetime"] = format_datetime
    environment.filters["cn_date"] = format_date
    environment.filters["cn_weekday"] = format_weekday
    environment.filters["cn_deadline"] = format_deadline
    environment.filters["file_size"] = format_size
    return environment


def _extra_context(notice: Notice) -> dict[str, object]:
    if isinstance(notice, ReceiptNotice):
        return {"totals": [(column_label(column), notice.totals.get(column, 0)) for column in COLUMNS]}
    if isinstance(notice, RejectionNotice):
        return {"violations": _violation_views(notice.violations)}
    if isinstance(notice, ChaseNotice):
        violations = _violation_views(notice.returned.violations) if notice.returned else []
        return {"violations": violations, "signed_on": format_date(notice.as_of, notice.tz)}
    if isinstance(notice, DigestNotice):
        return _digest_context(notice)
    if isinstance(notice, OneOffDigestNotice):
        return {"signed_on": format_date(notice.as_of, notice.tz)}
    if isinstance(notice, AlertNotice) and notice.as_of is not None:
        return {"signed_on": format_date(notice.as_of, notice.tz)}
    return {}


@dataclass(frozen=True)
class TotalsRow:
    """One column of the digest's totals: the week's sum and the campaign's so far (None: not summed)."""

    label: str
    week: int
    campaign: int | None


def _digest_context(notice: DigestNotice) -> dict[str, object]:
    totals = [TotalsRow(column_label(column), notice.week_totals.get(column, 0),
                        notice.campaign_totals.get(column)) for column in COLUMNS]
    return {
        "totals": totals,
        "returned_rules": {item.unit: _rules_broken(item) for item in notice.returned},
        "signed_on": format_date(notice.as_of, notice.tz),
    }


def _rules_broken(item: ReturnedUnit) -> str:
    """Return the printed rules a returned report broke, each once, such as ``6栏=9+11+13+15+17+19``."""
    printed = dict.fromkeys(RULES[violation.rule].printed for violation in item.violations)
    return "；".join(printed)


def _violation_views(violations: list[Violation]) -> list[ViolationView]:
    return [_violation_view(number, item) for number, item in enumerate(violations, 1)]


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


def format_date(moment: dt.datetime, tz: ZoneInfo = BEIJING) -> str:
    """Format the local date of an aware datetime as ``2024年3月20日``."""
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日"


def format_size(size: int) -> str:
    """Format a file size as ``860 KB`` or ``12.4 MB``, rounded to what a reader needs."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


_WEEKDAYS = "一二三四五六日"


def format_weekday(moment: dt.datetime, tz: ZoneInfo = BEIJING) -> str:
    """Return the local weekday of an aware datetime as ``星期五``."""
    return "星期" + _WEEKDAYS[moment.astimezone(tz).weekday()]


def format_deadline(moment: dt.datetime, tz: ZoneInfo = BEIJING) -> str:
    """Format a deadline with its weekday, as ``2023年12月22日（星期五）18:00（北京时间）``."""
    local = moment.astimezone(tz)
    return f"{format_date(local, tz)}（{format_weekday(local, tz)}）{local:%H:%M}（{_zone_label(local)}）"


def _zone_label(local: dt.datetime) -> str:
    offset = local.utcoffset()
    if offset == BEIJING_OFFSET:
        return "北京时间"
    sign = "-" if offset < dt.timedelta(0) else "+"
    hours, seconds = divmod(int(abs(offset).total_seconds()), 3600)
    return f"UTC{sign}{hours:02d}:{seconds // 60:02d}"
