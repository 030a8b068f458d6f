"""Generate a prefecture's season: counties, their townships and one valid report per unit and week.

Usage, from the repository root:
``python -m benchmarks.season FOLDER [--units 100] [--weeks 15] [--mailboxes 4]``. It writes
``FOLDER/config.toml`` with one [[mailbox]] entry per county and ``FOLDER/mail/<county>/`` with one
.eml file per report, then prints the number of mails as JSON.

Every name and address is fictitious (``@example.cn``). Each unit's numbers are drawn from a
random generator seeded with the unit's position, so the files differ from unit to unit and week
to week but the same arguments always give the same names, numbers and dates. Only the creation
time that openpyxl writes into each workbook changes from one generation to the next. The numbers obey every rule of the
form (6 = 9+11+…+19, 7 = 10+12+…+20, 6 < 4, 7 < 5, 8 < 7) and the checks across weeks: the
running totals 4 and 5 are last week's plus this week's. Each mail is dated before its week's
deadline, so every report is accepted and on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from service.samples.mails import MailStyle, build_mail, build_mail_with_files
from service.samples.tables import build_xlsx

BEIJING = ZoneInfo("Asia/Shanghai")
FIRST_DEADLINE = dt.datetime(2023, 12, 8, 18, 0, tzinfo=BEIJING)
CAMPAIGN_NAME = "科技之冬"

_COUNTY_STEMS = ("青岚", "白石", "云溪", "松岭", "杏川", "梅坪", "柏源", "榆湾")
# A unit's name is one character of each list and 镇 or 乡: 28 × 14 names, all of three characters,
# so that no unit's name contains another's.
_NAME_FIRST = "东西南北上下新红白青金石柳杏松梨桃双三五七九沙榆枣永太长"
_NAME_SECOND = "湖岭山坡河溪桥林园庄湾沟泉台"
_SURNAMES = "李王张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
_GIVEN_NAMES = ("明", "芳", "军", "静", "磊", "丽", "强", "敏", "洋", "娟", "建华", "秀英", "志刚", "海燕")
# The mail clients of the clerks. Each unit keeps one client all season.
_STYLES = (MailStyle.WEBMAIL_163, MailStyle.WEBMAIL_163, MailStyle.QQMAIL, MailStyle.FOXMAIL,
           MailStyle.THUNDERBIRD)
# The maximum sessions of one activity category (columns 9..20) in a unit's week, and the range of
# persons per session.
_MAX_SESSIONS = 4
_PERSONS_PER_SESSION = (15, 90)


@dataclass(frozen=True)
class Unit:
    """A township: its name, address, number of villages, mail client and reporting clerk."""

    position: int  # 0-based across the prefecture, and the seed of the unit's numbers
    name: str
    address: str
    villages: int
    style: MailStyle
    reporter: str


@dataclass(frozen=True)
class County:
    """A county mailbox ([[mailbox]] entry) and the units that report to it."""

    name: str
    address: str
    units: tuple[Unit, ...]


@dataclass(frozen=True)
class Season:
    """The counties of the prefecture and the number of weekly deadlines."""

    counties: tuple[County, ...]
    weeks: int

    @property
    def units(self) -> list[Unit]:
        return [unit for county in self.counties for unit in county.units]

    @property
    def mail_count(self) -> int:
        return len(self.units) * self.weeks

    def deadline(self, week: int) -> dt.datetime:
        """Return the deadline of ``week``: Fridays at 18:00 Beijing time from 2023年12月8日."""
        return FIRST_DEADLINE + dt.timedelta(weeks=week - 1)


def plan_season(units: int, weeks: int, mailboxes: int) -> Season:
    """Return a season of ``units`` spread as evenly as possible over ``mailboxes`` counties."""
    if not 1 <= mailboxes <= units <= len(_NAME_FIRST) * len(_NAME_SECOND):
        raise ValueError(f"need 1 <= mailboxes <= units <= {len(_NAME_FIRST) * len(_NAME_SECOND)}, "
                         f"got {mailboxes} mailbox(es) and {units} unit(s)")
    if weeks < 1:
        raise ValueError(f"need at least one week, got {weeks}")

    counties = []
    first = 0
    for index in range(mailboxes):
        size = units // mailboxes + (1 if index < units % mailboxes else 0)
        number = index + 1
        members = tuple(_unit(position, number, position - first + 1) for position in range(first, first + size))
        counties.append(County(_county_name(index), f"county{number:02d}-kexie@example.cn", members))
        first += size
    return Season(tuple(counties), weeks)


def _county_name(index: int) -> str:
    stem = _COUNTY_STEMS[index % len(_COUNTY_STEMS)]
    round_number = index // len(_COUNTY_STEMS)
    return f"{stem}县" if round_number == 0 else f"{stem}{round_number + 1}县"


def _unit(position: int, county: int, number: int) -> Unit:
    first = _NAME_FIRST[position % len(_NAME_FIRST)]
    second = _NAME_SECOND[position // len(_NAME_FIRST)]
    rng = random.Random(position)
    return Unit(
        position=position,
        name=f"{first}{second}{'乡' if position % 3 == 0 else '镇'}",
        address=f"county{county:02d}-town{number:03d}@example.cn",
        villages=rng.randint(6, 24),
        style=_STYLES[position % len(_STYLES)],
        reporter=rng.choice(_SURNAMES) + rng.choice(_GIVEN_NAMES),
    )


# --- the numbers ---------------------------------------------------------------------------------


def weekly_rows(unit: Unit, weeks: int) -> list[tuple[int, ...]]:
    """Return the unit's data row (columns 2..20) of each week, week 1 first.

    Every week has at least one session, so the running totals grow strictly and 6 < 4 is true from
    week 2 on. In week 1 the running totals equal the week's, which the form allows.
    """
    rng = random.Random(f"{unit.position}-numbers")
    running_sessions = running_persons = 0
    rows = []
    for _ in range(weeks):
        categories = _categories(rng)
        sessions = sum(count for count, _ in categories)
        persons = sum(people for _, people in categories)
        running_sessions += sessions
        running_persons += persons
        scientists = rng.randint(1, persons // 10)
        villages = rng.randint(1, unit.villages)
        pairs = [value for pair in categories for value in pair]
        rows.append((1, villages, running_sessions, running_persons, sessions, persons, scientists, *pairs))
    return rows


def _categories(rng: random.Random) -> list[tuple[int, int]]:
    """Return (sessions, persons) of the six categories, with at least one session in all."""
    sessions = [rng.randint(0, _MAX_SESSIONS) for _ in range(6)]
    if not any(sessions):
        sessions[rng.randrange(6)] = 1
    return [(count, sum(rng.randint(*_PERSONS_PER_SESSION) for _ in range(count))) for count in sessions]


# --- the mails -----------------------------------------------------------------------------------


def report_mail(season: Season, county: County, unit: Unit, week: int, row: Sequence[int]) -> tuple[dt.datetime, bytes]:
    """Return the moment the unit's clerk sends the report of ``week`` and the mail's bytes.

    The clerk sends it between Wednesday 09:00 and Friday 17:45 of the deadline's week.
    """
    rng = random.Random(f"{unit.position}-{week}-sent")
    deadline = season.deadline(week)
    sent_at = (deadline - dt.timedelta(days=rng.randint(0, 2))).replace(
        hour=rng.randint(9, 17), minute=rng.randrange(0, 60, 5), second=rng.randint(0, 59))
    sent_at = min(sent_at, deadline - dt.timedelta(minutes=15))

    subject = f"{unit.name}第{week}周{CAMPAIGN_NAME}周统计表"
    filename = f"{unit.name}第{week}周统计表.xlsx"
    table = build_xlsx([row], unit=unit.name, reporter=unit.reporter,
                       phone=f"138****{unit.position:04d}", date_text=f"{sent_at:%Y年%-m月%-d日}")
    common = dict(sender=unit.address, sender_name=f"{unit.name}科协", subject=subject, date=sent_at,
                  message_id=f"<week{week}.{unit.address}>", to=county.address,
                  body=f"您好：\n附件是{unit.name}第{week}周“{CAMPAIGN_NAME}”活动开展周统计表，请查收。\n\n"
                       f"{unit.name} {unit.reporter}")
    if unit.style is MailStyle.WEBMAIL_163:
        raw = build_mail_with_files([(filename, table)], **common)
    else:
        raw = build_mail(unit.style, attachment=table, filename=filename, **common)
    return sent_at, raw


def write_mails(season: Season, folder: Path) -> dict[str, Path]:
    """Write every report as an .eml file and return each county's folder by county name.

    File names start with the send time, so a folder sorts in the order the mails arrived, and
    each file's modification time is its send time, as a mail client saves it.
    """
    folders = {}
    for county in season.counties:
        target = folder / county.name
        target.mkdir(parents=True, exist_ok=True)
        for unit in county.units:
            for week, row in enumerate(weekly_rows(unit, season.weeks), start=1):
                sent_at, raw = report_mail(season, county, unit, week, row)
                path = target / f"{sent_at.astimezone(dt.timezone.utc):%Y%m%dT%H%M%S}-{unit.address}.eml"
                path.write_bytes(raw)
                os.utime(path, (sent_at.timestamp(), sent_at.timestamp()))
        folders[county.name] = target
    return folders


# --- the config ----------------------------------------------------------------------------------


def config_text(season: Season, database_url: str) -> str:
    """Return the prefecture's config: one [[mailbox]] per county, on servers never contacted.

    The IMAP and SMTP servers point at 127.0.0.1 with fictitious accounts. Importing files uses only
    the database.
    """
    last_deadline = season.deadline(season.weeks)
    head = f"""
[database]
url = "{database_url}"

[campaign]
name = "{CAMPAIGN_NAME}"
first_deadline = "{FIRST_DEADLINE:%Y-%m-%d %H:%M}"
last_deadline = "{last_deadline:%Y-%m-%d %H:%M}"
"""
    return head + "".join(_mailbox_entry(county) for county in season.counties)


def _mailbox_entry(county: County) -> str:
    units = "".join(
        f'\n[[mailbox.units]]\nname = "{unit.name}"\nemails = ["{unit.address}"]\nvillages = {unit.villages}\n'
        for unit in county.units
    )
    return f"""
[[mailbox]]
name = "{county.name}"
host = "127.0.0.1"
port = 1143
security = "none"
username = "{county.address}"
password = "unused"

[mailbox.smtp]
host = "127.0.0.1"
port = 2525
security = "none"
login = false
from = "{county.address}"
from_name = "{county.name}科协"

[mailbox.admin]
emails = ["admin-{county.address}"]
{units}"""


def write_season(season: Season, folder: Path, database_url: str) -> Path:
    """Write ``folder/config.toml`` and the mails under ``folder/mail``; return the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_mails(season, mail_folder(folder))
    config = folder / "config.toml"
    config.write_text(config_text(season, database_url), encoding="utf-8")
    return config


def mail_folder(folder: Path) -> Path:
    """Return the folder under a season's folder that contains one folder of mails per county."""
    return folder / "mail"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder to write config.toml and the mails into")
    parser.add_argument("--units", type=int, default=100, help="number of townships (default 100)")
    parser.add_argument("--weeks", type=int, default=15, help="number of weekly deadlines (default 15)")
    parser.add_argument("--mailboxes", type=int, default=4, help="number of county mailboxes (default 4)")
    parser.add_argument("--database-url", default="sqlite:///zhoubao.sqlite3",
                        help="the [database] url written into config.toml")
    options = parser.parse_args(argv)

    season = plan_season(options.units, options.weeks, options.mailboxes)
    config = write_season(season, options.folder, options.database_url)
    json.dump({"config": str(config), "mails": season.mail_count, "units": len(season.units),
               "weeks": season.weeks, "mailboxes": len(season.counties)}, sys.stdout)


if __name__ == "__main__":
    main()
