"""Checks across weeks (核实性): findings that ask the clerk to confirm, never a rejection.

A report that passes the rules of the form stays accepted whatever these checks find. Each
finding carries a Chinese sentence that asks the clerk to confirm the numbers or resend the table.

- C1: 累计场次 this week should be last week's plus this week's, 4 = 4′ + 6.
- C2: 累计人次 likewise, 5 = 5′ + 7.
- C3: 村（个） should not exceed the unit's number of villages in the config.

C1 and C2 compare the column totals of the unit's latest earlier accepted report. When a reporting
week lies between the two, the unit's activities in it are unknown, so 4 ≥ 4′ + 6 is all that
can be checked. Without an earlier accepted report (the first week, or a unit that joined late)
C1 and C2 find nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ingest.calendar import Campaign
from ingest.form import column_label

_CONFIRM = "请核实：如填写有误，请更正后重新报送；如无误，请回复说明情况。"


class CheckId(StrEnum):
    """Ids of the checks across weeks."""

    C1 = "C1"  # 4 = 4′ + 6
    C2 = "C2"  # 5 = 5′ + 7
    C3 = "C3"  # 3 <= the unit's villages


@dataclass(frozen=True)
class WeekTotals:
    """The column totals (2..20) of a unit's accepted report for one week."""

    week: int
    totals: Mapping[int, int]


@dataclass(frozen=True)
class Finding:
    """One item for the clerk to confirm.

    ``values`` maps each term to its number: ``"4"`` this week's column, ``"4′"`` the same column
    in ``previous_week``, ``"villages"`` the unit's number of villages. ``expected`` is what the
    column should equal (C1, C2 without a gap) or not fall below (C1, C2 after a gap) or not exceed
    (C3). ``message`` is the Chinese sentence for the receipt and the digest.
    """

    check: CheckId
    columns: tuple[int, ...]
    values: dict[str, int]
    expected: int
    previous_week: int | None
    message: str

    @property
    def summary(self) -> str:
        """The finding without the request to the clerk, for the admin's digest and lists."""
        return self.message.removesuffix(_CONFIRM)


# Each running-total column, the column of this week it adds, and its check.
_RUNNING_TOTALS = ((CheckId.C1, 4, 6), (CheckId.C2, 5, 7))


def previous_accepted(reports: Iterable[WeekTotals], week: int) -> WeekTotals | None:
    """Return the report of the latest week before ``week`` among ``reports``, else None."""
    earlier = [report for report in reports if report.week < week]
    return max(earlier, key=lambda report: report.week, default=None)


def check_consistency(current: WeekTotals, previous: WeekTotals | None, campaign: Campaign,
                      villages: int | None) -> list[Finding]:
    """Return the findings of this week's totals against ``previous`` and the unit's villages.

    ``previous`` is the unit's latest accepted report before ``current`` (see
    :func:`previous_accepted`), and ``villages`` is None when the config does not state it.
    """
    findings = []
    if previous is not None:
        missed = _missed_weeks(campaign, previous.week, current.week)
        for check, running, weekly in _RUNNING_TOTALS:
            finding = _running_total(check, running, weekly, current, previous, missed)
            if finding is not None:
                findings.append(finding)

    if villages is not None and current.totals.get(3, 0) > villages:
        findings.append(_too_many_villages(current.totals.get(3, 0), villages))
    return findings


def _missed_weeks(campaign: Campaign, previous_week: int, week: int) -> list[int]:
    """Return the reporting weeks strictly between ``previous_week`` and ``week``."""
    return [number for number in campaign.weeks() if previous_week < number < week]


def _running_total(check: CheckId, running: int, weekly: int, current: WeekTotals,
                   previous: WeekTotals, missed: list[int]) -> Finding | None:
    """Compare a 累计 column with last report's 累计 plus this week's number."""
    found = current.totals.get(running, 0)
    before = previous.totals.get(running, 0)
    added = current.totals.get(weekly, 0)
    expected = before + added
    if found == expected or missed and found > expected:
        return None

    terms = (f"第{previous.week}周报送的{column_label(running)} {before} "
             f"加本周{column_label(weekly)} {added}")
    if missed:
        missed_text = "、".join(f"第{number}周" for number in missed)
        sentence = (f"{column_label(running)}为 {found}，小于{terms}之和 {expected}"
                    f"（{missed_text}未报送，累计数只应增加）。")
    else:
        sentence = f"{column_label(running)}为 {found}，而{terms}，应为 {expected}，相差 {abs(found - expected)}。"

    values = {str(running): found, f"{running}′": before, str(weekly): added}
    return Finding(check, (running, weekly), values, expected, previous.week, sentence + _CONFIRM)


def _too_many_villages(found: int, villages: int) -> Finding:
    sentence = f"{column_label(3)}为 {found}，超过本单位的行政村数 {villages}。"
    return Finding(CheckId.C3, (3,), {"3": found, "villages": villages}, villages, None,
                   sentence + _CONFIRM)
