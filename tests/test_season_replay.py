"""Replay a whole season on a fixed clock and check every reminder, overdue notice and digest.

The campaign has 16 weeks, due on Fridays at 18:00 Beijing time from 2023年12月8日. Week 10 (due
2024年2月9日, 除夕) is skipped for the Spring Festival. Ten units follow a scripted season of
on-time, late, missing and returned reports; one joins in week 5 and one leaves after week 12.
Each mail goes into the Dovecot inbox, with its scripted time as Date and INTERNALDATE, just before
the first tick at or after that time. The service takes a report's arrival time from the
INTERNALDATE, not from its own clock. The service runs on a fixed clock every six hours and two
minutes after each scheduled notice's moment, mostly in this process. At seeded random ticks the
real command is killed at a failpoint and the tick is run again, as a restart would. Twice the
service is down for a while, so that some notices are stale or some reports arrive by the restart.

The notices each address must receive are worked out here from the script and these rules, without
the planner:

- a reminder on Friday 12:00 to each unit due that week without an accepted report, never once the
  deadline has passed;
- an overdue notice on Friday 18:30 to each unit still without one (a returned report counts as
  missing), stale once the second overdue notice is due;
- a second overdue notice on the next Monday 10:00;
- the digest on Friday 19:00 to the admin;
- nothing in a skipped week, and each notice at most once per unit, week and kind.

A report without 第N周 received after a deadline counts for the week just closed when the unit has
no accepted report for it, and otherwise for the next week.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from ingest.failpoints import ENVIRONMENT_VARIABLE, POINTS
from service.cli import main
from service.clock import Clock
from service.config import load_settings
from service.runtime import open_database, run_once
from service.samples.mails import build_mail_with_files
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from tests.fixtures.service import config_text
from tests.test_intake import deliver

pytestmark = pytest.mark.dovecot

SEED = 20240209
CRASHES = 10

BEIJING = ZoneInfo("Asia/Shanghai")
FIRST_DEADLINE = dt.datetime(2023, 12, 8, 18, 0, tzinfo=BEIJING)
LAST_WEEK = 16
SKIPPED_WEEK = 10
ADMIN = "kexie-admin@example.cn"

TICK_INTERVAL = dt.timedelta(hours=6)
FIRST_TICK = dt.datetime(2023, 12, 4, 0, 0, tzinfo=BEIJING)
LAST_TICK = dt.datetime(2024, 3, 29, 0, 0, tzinfo=BEIJING)
# A tick this long after each scheduled notice's moment.
NOTICE_TICK_DELAY = dt.timedelta(minutes=2)
# Times the service is down, [start, end): it misses the ticks within and starts again at the end.
# The first outage spans week 7's deadline weekend, so its reminder and overdue notice are stale
# by the restart. The second delays week 12's overdue notice past a late report.
OUTAGES = (
    (dt.datetime(2024, 1, 19, 11, 0, tzinfo=BEIJING), dt.datetime(2024, 1, 22, 11, 0, tzinfo=BEIJING)),
    (dt.datetime(2024, 2, 23, 18, 10, tzinfo=BEIJING), dt.datetime(2024, 2, 23, 20, 30, tzinfo=BEIJING)),
)

CHASE_KINDS = ("reminder", "overdue", "overdue-2")
NOTICE_KINDS = (*CHASE_KINDS, "digest")

# The mails of one week of a unit's season, by code: (days after the deadline's date, hour,
# whether the table is valid, whether the subject and file name say 第N周).
CODES: dict[str, tuple[tuple[int, int, bool, bool], ...]] = {
    "T": ((-1, 16, True, True),),  # on time on Thursday, before the reminder
    "F": ((0, 15, True, True),),  # on time on Friday, after the reminder
    "U": ((0, 9, True, False),),  # on time without 第N周, so it fills the week before if that is missing
    "L": ((0, 20, True, False),),  # late on Friday evening, after the overdue notice
    "M": ((3, 9, True, False),),  # late on Monday, before the second overdue notice
    "N": ((3, 14, True, False),),  # late on Monday, after the second overdue notice
    "W": ((5, 10, True, False),),  # late on the next Wednesday
    "R": ((-1, 15, False, True),),  # returned (R1 violated) and never corrected
    "C": ((-1, 11, False, True), (0, 16, True, True)),  # returned, corrected before the deadline
    "K": ((0, 17, False, True), (1, 11, True, False)),  # returned, corrected late without 第N周
    "-": (),  # missing
    ".": (),  # not due: the skipped week, or before the unit joins or after it leaves
}


@dataclass(frozen=True)
class ScriptedUnit:
    """A unit and its season: one code of :data:`CODES` per week, week 1 first."""

    name: str
    address: str
    season: str
    from_week: int = 1
    until_week: int = LAST_WEEK

    def reports_in(self, week: int) -> bool:
        return week != SKIPPED_WEEK and self.from_week <= week <= self.until_week


UNITS = (
    ScriptedUnit("水定镇", "shuiding@example.cn", "TTFTTTTTT.TTFTTT"),
    ScriptedUnit("清水河镇", "qingshuihe@example.cn", "TLTMTNTTW.TTLTNT"),
    ScriptedUnit("芦草沟镇", "lucaogou@example.cn", "TCTTKTTCT.TTKTCT"),
    ScriptedUnit("惠远镇", "huiyuan@example.cn", "T-TT-UTT-.TT-UTT"),
    ScriptedUnit("萨尔布拉克镇", "saerbulake@example.cn", "TTRTTRTTT.RTTTRT"),
    ScriptedUnit("三道河乡", "sandaohe@example.cn", "FFTLTCTRT.KFTNTW"),
    ScriptedUnit("兰干乡", "langan@example.cn", "---------.------"),
    ScriptedUnit("大西沟乡", "daxigou@example.cn", "TKNMTTLTF.TRTKTT"),
    ScriptedUnit("三宫回族乡", "sangong@example.cn", "TTTTFTTTT.-L....", until_week=12),
    ScriptedUnit("果子沟牧场", "guozigou@example.cn", "....UTFTL.TTTTTT", from_week=5),
)

REPORTING_WEEKS = [week for week in range(1, LAST_WEEK + 1) if week != SKIPPED_WEEK]


# --- the calendar, from the rules ---------------------------------------------------------------


def deadline(week: int) -> dt.datetime:
    return FIRST_DEADLINE + dt.timedelta(weeks=week - 1)


def notice_moment(kind: str, week: int) -> dt.datetime:
    day = deadline(week).date()
    moments = {
        "reminder": (day, dt.time(12, 0)),
        "overdue": (day, dt.time(18, 30)),
        "overdue-2": (day + dt.timedelta(days=3), dt.time(10, 0)),
        "digest": (day, dt.time(19, 0)),
    }
    date, time = moments[kind]
    return dt.datetime.combine(date, time, tzinfo=BEIJING)


def is_useful(kind: str, week: int, moment: dt.datetime) -> bool:
    """Tell whether a notice is due at ``moment`` and not stale yet.

    A reminder is stale at the deadline and an overdue notice once the second one is due.
    """
    if moment < notice_moment(kind, week):
        return False
    if kind == "reminder":
        return moment < deadline(week)
    if kind == "overdue":
        return moment < notice_moment("overdue-2", week)
    return True


def ticks() -> list[dt.datetime]:
    moments = set()
    moment = FIRST_TICK
    while moment <= LAST_TICK:
        moments.add(moment)
        moment += TICK_INTERVAL
    for week in REPORTING_WEEKS:
        for kind in NOTICE_KINDS:
            moments.add(notice_moment(kind, week) + NOTICE_TICK_DELAY)
    for start, end in OUTAGES:
        moments = {moment for moment in moments if not start <= moment < end} | {end}
    return sorted(moments)


def restarts_after_outage(previous: dt.datetime, tick: dt.datetime) -> bool:
    return any(previous < start and tick >= end for start, end in OUTAGES)


# --- the script ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedMail:
    """One report mail of the script; ``week`` is the week the script writes it for."""

    unit: ScriptedUnit
    week: int
    sent_at: dt.datetime
    valid: bool
    labelled: bool

    @property
    def message_id(self) -> str:
        local = self.unit.address.partition("@")[0]
        return f"<{local}.{self.sent_at:%Y%m%d%H%M}@example.cn>"

    @property
    def subject(self) -> str:
        if self.labelled:
            return f"{self.unit.name}第{self.week}周科技之冬周统计表"
        return f"{self.unit.name}科技之冬周统计表"

    def raw(self) -> bytes:
        return build_mail_with_files(
            [(f"{self.subject}.xlsx", _table(self.unit.name, self.valid))],
            sender=self.unit.address, sender_name=f"{self.unit.name}科协", subject=self.subject,
            date=self.sent_at, message_id=self.message_id,
            body=f"您好：\n附件是{self.unit.name}“科技之冬”活动开展周统计表，请查收。",
        )


@cache
def _table(unit: str, valid: bool) -> bytes:
    # No 填报时间, so that only the subject or the arrival time decides the week.
    return build_xlsx([SAMPLE_ROWS["valid" if valid else "r1_broken"]], unit=unit, date_text="")


def scripted_mails() -> list[ScriptedMail]:
    """Return every mail of the season in the order of their sending time."""
    mails = []
    for unit in UNITS:
        assert len(unit.season) == LAST_WEEK, unit.name
        for week, code in enumerate(unit.season, start=1):
            assert (code == ".") == (not unit.reports_in(week)), (unit.name, week)
            day = deadline(week).date()
            for days, hour, valid, labelled in CODES[code]:
                sent_at = dt.datetime.combine(day + dt.timedelta(days=days), dt.time(hour), tzinfo=BEIJING)
                mails.append(ScriptedMail(unit, week, sent_at, valid, labelled))
    return sorted(mails, key=lambda mail: mail.sent_at)


@dataclass(frozen=True)
class StoredReport:
    """Where a report must end up: its week, status and lateness."""

    unit: str
    week: int
    status: str
    late: bool


def expected_reports(mails: list[ScriptedMail]) -> dict[str, StoredReport]:
    """Apply the week rule to each mail in arrival order; returns the report by Message-ID."""
    accepted: dict[str, set[int]] = defaultdict(set)
    reports = {}
    for mail in mails:
        unit = mail.unit
        if mail.labelled:
            week = mail.week
        else:
            week = _week_by_arrival(unit, mail.sent_at, accepted[unit.name])
        if mail.valid:
            accepted[unit.name].add(week)
        reports[mail.message_id] = StoredReport(unit.name, week, "accepted" if mail.valid else "rejected",
                                                mail.sent_at > deadline(week))
    return reports


def _week_by_arrival(unit: ScriptedUnit, received_at: dt.datetime, accepted: set[int]) -> int:
    """Return the week a report without 第N周 fills: the unit's week just closed, else the next."""
    closed = [week for week in REPORTING_WEEKS if unit.reports_in(week) and deadline(week) < received_at]
    if closed and closed[-1] not in accepted:
        return closed[-1]
    return next(week for week in REPORTING_WEEKS if deadline(week) >= received_at)


def accepted_moments(mails: list[ScriptedMail], reports: dict[str, StoredReport]) -> dict[tuple[str, int], dt.datetime]:
    """Return when each unit first had an accepted report for each week."""
    moments: dict[tuple[str, int], dt.datetime] = {}
    for mail in mails:
        report = reports[mail.message_id]
        if report.status == "accepted":
            moments.setdefault((report.unit, report.week), mail.sent_at)
    return moments


def expected_notices(tick_moments: list[dt.datetime],
                     accepted_at: dict[tuple[str, int], dt.datetime]) -> dict[str, list[tuple[dt.datetime, str]]]:
    """Return, per address, the (tick, X-Zhoubao-Notice) of each notice it must get, in order.

    At each tick every notice whose moment has come, that is not stale and not yet sent, goes out,
    unless the unit has an accepted report by then.
    """
    sent: set[tuple[str, str]] = set()
    expected: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for tick in tick_moments:
        for week in REPORTING_WEEKS:
            for kind in NOTICE_KINDS:
                if not is_useful(kind, week, tick):
                    continue
                header = f"{kind}; week={week}"
                for address in _recipients(kind, week, tick, accepted_at):
                    if (address, header) not in sent:
                        sent.add((address, header))
                        expected[address].append((tick, header))
    return expected


def _recipients(kind: str, week: int, tick: dt.datetime,
                accepted_at: dict[tuple[str, int], dt.datetime]) -> list[str]:
    if kind == "digest":
        return [ADMIN]
    return [unit.address for unit in UNITS
            if unit.reports_in(week) and not accepted_by(accepted_at, unit.name, week, tick)]


def accepted_by(accepted_at: dict[tuple[str, int], dt.datetime], unit: str, week: int,
                moment: dt.datetime) -> bool:
    """Tell whether ``unit`` had an accepted report for ``week`` at ``moment``."""
    first = accepted_at.get((unit, week))
    return first is not None and first <= moment


# --- the service --------------------------------------------------------------------------------


def season_config(setup) -> str:
    """Return the fixture's server, database and notice sections with this season's campaign and units."""
    servers = config_text(imap_port=setup.account.port, imap_user=setup.account.username,
                          imap_password=setup.account.password, smtp_port=setup.sink.port,
                          database_url=setup.database_url, notices=True).partition("[campaign]")[0]
    units = "\n".join(
        f'[[units]]\nname = "{unit.name}"\nemails = ["{unit.address}"]\n'
        + (f"from_week = {unit.from_week}\n" if unit.from_week != 1 else "")
        + (f"until_week = {unit.until_week}\n" if unit.until_week != LAST_WEEK else "")
        for unit in UNITS
    )
    return f"""{servers}
[admin]
emails = ["{ADMIN}"]
name = "贾老师"
phone = "0999-3021234"

[campaign]
name = "科技之冬"
first_deadline = {FIRST_DEADLINE:%Y-%m-%dT%H:%M:%S}
last_deadline = {deadline(LAST_WEEK):%Y-%m-%dT%H:%M:%S}
timezone = "Asia/Shanghai"
skipped_weeks = [{SKIPPED_WEEK}]

{units}"""


class RunningService:
    """The state of one long-running service process: its settings and an open database."""

    def __init__(self, config_path: Path):
        self.settings = load_settings(config_path)
        self.database = open_database(self.settings)

    def tick(self, now: dt.datetime) -> bool:
        return run_once(self.settings, self.database, Clock(now))

    def stop(self) -> None:
        self.database.dispose()


def run_killed(config_path: Path, now: dt.datetime, point: str) -> subprocess.CompletedProcess:
    """Run ``zhoubao run --once`` as a real process that kills itself at ``point``."""
    environment = {**os.environ, ENVIRONMENT_VARIABLE: point}
    command = [sys.executable, "-c", "from service.cli import main; main()",
               "--config", str(config_path), "--now", now.isoformat(), "run", "--once"]
    return subprocess.run(command, env=environment, cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, timeout=120)


def plan_crashes(mails_by_tick: dict[dt.datetime, list[ScriptedMail]],
                 notices_by_tick: Counter) -> dict[dt.datetime, str]:
    """Choose the killed ticks and their failpoints, each at a tick where that point is reached.

    Every intake point is reached at a tick with mail in the inbox. The send points are reached at
    a tick with a reply or a notice to send.
    """
    rng = random.Random(SEED)
    with_mail = set(mails_by_tick)
    with_sends = with_mail | set(notices_by_tick)
    crashes: dict[dt.datetime, str] = {}
    for _ in range(CRASHES):
        point = rng.choice(POINTS)
        candidates = with_sends if point in ("before-send", "after-send") else with_mail
        tick = rng.choice(sorted(candidates - set(crashes)))
        crashes[tick] = point
    return crashes


@dataclass
class Replay:
    """What the replay left: the mails of the script, the ticks, the kills and the sink's mails."""

    mails: list[ScriptedMail]
    ticks: list[dt.datetime]
    crashes: dict[dt.datetime, str]
    # Message-IDs that a killed run sent before it died, so the restart sends them again.
    resent_ids: list[str]
    sent: list[EmailMessage]
    submissions: list[dict]


@pytest.fixture
def replay(service_setup) -> Replay:
    """GIVEN the scripted season WHEN the service ticks through it, killed and restarted at random."""
    setup = service_setup
    setup.config_path.write_text(season_config(setup), encoding="utf-8")
    mails = scripted_mails()
    tick_moments = ticks()
    reports = expected_reports(mails)
    expected = expected_notices(tick_moments, accepted_moments(mails, reports))

    mails_by_tick: dict[dt.datetime, list[ScriptedMail]] = defaultdict(list)
    for mail in mails:
        mails_by_tick[next(tick for tick in tick_moments if tick >= mail.sent_at)].append(mail)
    notices_by_tick = Counter(tick for notices in expected.values() for tick, _ in notices)
    crashes = plan_crashes(mails_by_tick, notices_by_tick)

    resent_ids = []
    service = RunningService(setup.config_path)
    for previous, tick in zip([FIRST_TICK, *tick_moments], tick_moments):
        for mail in mails_by_tick.get(tick, []):
            deliver(setup.account, mail.raw())
        if restarts_after_outage(previous, tick):
            service.stop()
            service = RunningService(setup.config_path)
        if tick in crashes:
            service.stop()
            before = len(setup.sink.messages)
            killed = run_killed(setup.config_path, tick, crashes[tick])
            assert killed.returncode == -signal.SIGKILL, (tick, crashes[tick], killed.stderr)
            resent_ids.extend(_parse(item.raw)["Message-ID"] for item in setup.sink.messages[before:])
            service = RunningService(setup.config_path)
        assert service.tick(tick), f"run at {tick.isoformat()} failed"
    service.stop()

    listed = CliRunner().invoke(main, ["--config", str(setup.config_path), "submissions", "--json"])
    assert listed.exit_code == 0, listed.output
    assert setup.account.uids("INBOX") == []
    return Replay(mails, tick_moments, crashes, resent_ids,
                  [_parse(item.raw) for item in setup.sink.messages], json.loads(listed.stdout))


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def once_each(replay: Replay) -> list[EmailMessage]:
    """Return the sink's mails with the second copy of each resent mail left out.

    A mail may arrive twice only when a run was killed after the SMTP server accepted it, and
    then with the same Message-ID. Any other repeated Message-ID fails.
    """
    counts = Counter(mail["Message-ID"] for mail in replay.sent)
    repeated = {message_id: count for message_id, count in counts.items() if count > 1}
    assert repeated == dict.fromkeys(replay.resent_ids, 2)

    seen = set()
    first_copies = []
    for mail in replay.sent:
        if mail["Message-ID"] not in seen:
            seen.add(mail["Message-ID"])
            first_copies.append(mail)
    return first_copies


class SentNotice(NamedTuple):
    """A scheduled notice as the sink received it; ``sent_at`` is its Date, the tick that queued it."""

    recipient: str
    header: str
    sent_at: dt.datetime

    @property
    def kind(self) -> str:
        return self.header.partition(";")[0]

    @property
    def week(self) -> int:
        return int(self.header.rpartition("week=")[2])


def notices_sent(replay: Replay) -> list[SentNotice]:
    """Return each scheduled notice the sink received, in sending order."""
    return [SentNotice(mail["To"], mail["X-Zhoubao-Notice"], mail["Date"].datetime) for mail in once_each(replay)
            if mail["X-Zhoubao-Notice"].partition(";")[0] in NOTICE_KINDS]


# --- the test ---------------------------------------------------------------------------------


def test_season_replay(replay):
    reports = expected_reports(replay.mails)
    accepted_at = accepted_moments(replay.mails, reports)
    units = {unit.address: unit for unit in UNITS}
    notices = notices_sent(replay)

    assert len(replay.crashes) == CRASHES
    assert len(replay.resent_ids) == list(replay.crashes.values()).count("after-send")

    stored = {item["message_id"]: StoredReport(item["unit"], item["week"], item["status"], item["late"])
              for item in replay.submissions}
    assert stored == reports

    answers = defaultdict(list)
    for mail in once_each(replay):
        if mail["In-Reply-To"]:
            answers[mail["In-Reply-To"]].append(mail["X-Zhoubao-Notice"])
    assert dict(answers) == {message_id: ["receipt" if report.status == "accepted" else "rejection"]
                             for message_id, report in reports.items()}

    # Stale or misdirected notices, each kind on its own before the exact lists below.
    assert [item for item in notices if item.week == SKIPPED_WEEK] == []
    assert [item for item in notices if item.sent_at < notice_moment(item.kind, item.week)] == []
    assert [item for item in notices if item.kind == "reminder" and item.sent_at >= deadline(item.week)] == []
    assert [item for item in notices if item.kind == "overdue"
            and item.sent_at >= notice_moment("overdue-2", item.week)] == []
    assert [item for item in notices if item.kind == "digest" and item.recipient != ADMIN] == []
    assert [item for item in notices if item.kind in CHASE_KINDS
            and not units[item.recipient].reports_in(item.week)] == []
    assert [item for item in notices if item.kind in CHASE_KINDS
            and accepted_by(accepted_at, units[item.recipient].name, item.week, item.sent_at)] == []

    by_address = defaultdict(list)
    for item in notices:
        by_address[item.recipient].append((item.sent_at, item.header))
    assert dict(by_address) == expected_notices(replay.ticks, accepted_at)
