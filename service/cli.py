"""The ``zhoubao`` command line: wiring only, the work happens in ingest/, store/ and notify/."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import click

from ingest.errors import ConfigError, StoreError
from ingest.table import FileProblem
from service.clock import Clock

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "config.toml"


class AppContext:
    """State shared by every subcommand: the config path, the clock, and settings loaded on first use."""

    def __init__(self, config_path: Path, clock: Clock, mailbox: str | None = None):
        self.config_path = config_path
        self.clock = clock
        self.mailbox = mailbox
        self._deployments = None

    def deployments(self, require_secrets: bool = True):
        """Load the config: the settings of each mailbox, or of the one ``--mailbox`` names.

        Without ``require_secrets`` a missing password is not an error yet.
        """
        if self._deployments is None:
            from service.config import load_deployments, load_settings

            try:
                if self.mailbox is None:
                    self._deployments = load_deployments(self.config_path, require_secrets=require_secrets)
                else:
                    self._deployments = (load_settings(self.config_path, require_secrets=require_secrets,
                                                       mailbox=self.mailbox),)
            except ConfigError as err:
                raise UserError(str(err)) from err
        return self._deployments

    def settings(self, require_secrets: bool = True):
        """Load the config and return the settings of the mailbox ``--mailbox`` names, else the first."""
        return self.deployments(require_secrets)[0]

    def database(self, require_secrets: bool = True):
        """Open the configured database, created or migrated to the current revision."""
        from service.runtime import open_database

        deployments = self.deployments(require_secrets)
        settings = deployments[0]
        try:
            database = open_database(*deployments)
        except StoreError as err:
            raise _database_error(settings, err) from err
        click.get_current_context().call_on_close(database.dispose)
        return database

    def current_database(self):
        """Open the configured database without migrating it; it must be at the current revision.

        For commands that only read, such as ``health``, which must not change the schema.
        """
        from store.session import Database

        settings = self.settings(require_secrets=False)
        database = Database(settings.database.url)
        click.get_current_context().call_on_close(database.dispose)
        missing = database.missing_file()
        if missing is not None:
            raise UserError(f"数据库文件 {missing} 不存在：服务可能从未启动，或配置文件 [database] url、"
                            "[service] data_dir 没有指向服务所用的数据库。")
        try:
            revision = database.revision()
        except StoreError as err:
            raise _database_error(settings, err) from err
        if revision != database.head_revision():
            raise UserError(f"数据库版本为 {revision or '空（尚未建表）'}，本程序需要 {database.head_revision()}："
                            f"请运行 zhoubao --config {self.config_path} db upgrade，或重新启动服务（启动时自动升级）。")
        return database


def _database_error(settings, err: StoreError) -> UserError:
    return UserError(
        f"无法打开数据库 {settings.database.safe_url}：{err.__cause__ or err}\n"
        "请检查配置文件 [database] 一节的 url、数据库服务是否在运行、用户名和密码是否正确。"
    )


class UserError(click.ClickException):
    """A failure the admin can fix, printed in Chinese without click's English "Error:" prefix."""

    def show(self, file=None) -> None:
        click.echo(f"错误：{self.format_message()}", err=True)


def _parse_now(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"“{value}”不是有效的时间，请写成 2023-12-22T18:30:00+08:00 的形式。") from err
    if moment.tzinfo is None:
        raise click.BadParameter(f"“{value}”缺少时区，请写明，例如 2023-12-22T18:30:00+08:00。")
    return moment


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic 1.16+ logs one INFO line per built-in plugin at every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # APScheduler logs each job run at INFO, twice a minute for the outbox; the jobs log what they did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_skip_overlap_warning)


def _skip_overlap_warning(record: logging.LogRecord) -> bool:
    """Drop APScheduler's warning that a run was skipped because the last one still runs.

    An IDLE wake-up moves the intake job while a cycle may be running; the cycle then picks up
    the new mail itself, so the skipped run is expected, not a fault.
    """
    return "maximum number of running instances reached" not in record.getMessage()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar="ZHOUBAO_CONFIG",
              default=DEFAULT_CONFIG, show_default=True,
              help="配置文件路径（也可用环境变量 ZHOUBAO_CONFIG 指定）。")
@click.option("--now", "now_text", metavar="ISO时间",
              help="把服务时钟固定在该时刻（用于重放和测试），例如 2023-12-22T18:30:00+08:00。")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="日志级别。")
@click.option("--mailbox", metavar="名称",
              help="配置了多个 [[mailbox]] 时，只处理该名称的邮箱；不写时 run 处理全部邮箱，其他命令针对第一个。")
@click.pass_context
def main(ctx: click.Context, config_path: Path, now_text: str | None, log_level: str, mailbox: str | None) -> None:
    """zhoubao（周报）：自动接收、校验、保存乡镇报送的科技之冬周统计表，并回复发件人。"""
    _configure_logging(log_level)
    ctx.obj = AppContext(config_path, Clock(_parse_now(now_text)), mailbox)


@main.command()
@click.option("--once", is_flag=True, help="只运行一轮（收信、处理、发送回复）后退出。")
@click.pass_obj
def run(app: AppContext, once: bool) -> None:
    """运行服务：定时收取邮箱中的统计表并发送回复。"""
    from service import runtime

    deployments = app.deployments()
    database = app.database()
    if once:
        ok = runtime.run_once(deployments, database, app.clock)
        sys.exit(0 if ok else 1)
    runtime.run_forever(deployments, database, app.clock)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """离线读取一个统计表文件，显示读到的内容和每一处不符合填表说明的地方。

    退出码：0 表示通过校验，1 表示有不符合之处，2 表示无法读取。
    """
    from ingest.checkfile import format_demand_form, format_report, inspect_file
    from ingest.convert import LibreOfficeConverter

    office = LibreOfficeConverter()
    result = inspect_file(file.read_bytes(), file.name, convert=office.convert if office.available else None)
    for report in result.reports:
        click.echo(format_report(report))
    for form in result.forms:
        click.echo(format_demand_form(form))
    if not (result.reports or result.forms):
        for problem in result.problems or [FileProblem(file.name, "未找到附件二周统计表。")]:
            click.echo(f"无法读取 {problem.file_name or file.name}：{problem.reason}", err=True)
        sys.exit(2)
    for problem in result.problems:
        click.echo(f"未读取 {problem.file_name}：{problem.reason}", err=True)
    sys.exit(0 if all(report.accepted for report in result.reports) else 1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="以 JSON 数组输出，每份报表一个对象。")
@click.pass_obj
def submissions(app: AppContext, as_json: bool) -> None:
    """列出已保存的报表（含被退回和被新报表替代的）。"""
    from service.listing import submissions_as_dicts, submissions_as_text

    database = app.database(require_secrets=False)
    # Without --mailbox the lists cover every mailbox of the config.
    units = {unit.name for unit in app.settings(require_secrets=False).units} if app.mailbox else None
    if as_json:
        click.echo(json.dumps(submissions_as_dicts(database, units), ensure_ascii=False, indent=2))
    else:
        click.echo(submissions_as_text(database, units))


@main.command()
@click.option("--outcome", "outcomes", multiple=True, show_default=True,
              type=click.Choice(["held", "failed", "unreadable", "rejected", "accepted", "summary", "ignored",
                                 "pending"]),
              default=("held", "failed"),
              help="只列出该处理结果的邮件，可重复使用；默认列出待人工核对和处理出错的邮件。")
@click.pass_obj
def messages(app: AppContext, outcomes: tuple[str, ...]) -> None:
    """列出收到的邮件及其处理结果，供管理员核对（默认只列待人工核对和处理出错的）。"""
    from service.listing import messages_as_text

    database = app.database(require_secrets=False)
    settings = app.settings(require_secrets=False)
    mailbox = settings.mailbox.key if app.mailbox else None
    click.echo(messages_as_text(database, list(outcomes), settings.campaign.timezone, mailbox))


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="路径...")
@click.option("--reply", is_flag=True,
              help="给导入邮件的发件人回复（放入发送队列）。默认不回复，以免给往期的发件人发信。")
@click.pass_obj
def import_mails(app: AppContext, paths: tuple[Path, ...], reply: bool) -> None:
    """导入已保存的邮件：.eml 文件（或存放 .eml 文件的目录）、mbox 文件或 Maildir 目录。

    每封邮件按收信流程读取、校验并保存；同一封邮件再次导入不会改变任何数据。
    """
    from service.importer import ImportSourceError, format_summary, import_paths

    settings = app.settings(require_secrets=False)
    database = app.database(require_secrets=False)

    def progress(sources):
        return click.progressbar(sources, label="正在导入邮件", file=sys.stderr)

    try:
        summary = import_paths(settings, database, app.clock, paths, reply=reply, progress=progress)
    except ImportSourceError as err:
        raise UserError(str(err)) from err
    click.echo(format_summary(summary))


@main.command()
@click.argument("submission_id", type=int, metavar="报表编号")
@click.argument("week", type=int, metavar="周次")
@click.pass_obj
def assign(app: AppContext, submission_id: int, week: int) -> None:
    """把一份报表改记到另一周（报表编号见 zhoubao submissions 每行开头的 #号）。"""
    from store.models import Submission
    from store.outcomes import AssignError, assign_week

    settings = app.settings(require_secrets=False)
    calendar = settings.campaign.calendar()
    if not calendar.is_reporting_week(week):
        raise UserError(f"第{week}周不是本次活动需要报送的周次，请检查周次。")
    units = {unit.name: unit for unit in settings.units}
    database = app.database(require_secrets=False)
    try:
        with database.session() as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                raise AssignError(submission_id)
            unit = units.get(submission.unit.name)
            if unit is not None and not unit.reports_in(week):
                raise UserError(f"{unit.name}第{week}周不需要报送（配置中该单位从第{unit.from_week}周"
                                f"{f'报送到第{unit.until_week}周' if unit.until_week else '起报送'}），不能改记到这一周。")
            late = calendar.is_late(week, submission.received_at)
            submission, old_week = assign_week(session, submission_id, week, late)
            name, status = submission.unit.name, submission.status
    except AssignError as err:
        raise UserError(f"找不到编号为 {submission_id} 的报表，请用 zhoubao submissions 查看编号。") from err
    labels = {"accepted": "已通过", "rejected": "已退回", "superseded": "已被新报表替代"}
    timing = "逾期报送" if late else "按时报送"
    click.echo(f"已把 {name} 的报表 #{submission_id} 从第{old_week}周改记到第{week}周（{timing}），"
               f"当前状态：{labels[str(status)]}。")


@main.group()
def db() -> None:
    """数据库维护。"""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: AppContext) -> None:
    """创建数据库或把它迁移到当前版本。"""
    from store.session import Database

    settings = app.settings(require_secrets=False)
    probe = Database(settings.database.url)
    try:
        before = probe.revision()
    except StoreError:
        before = None
    finally:
        probe.dispose()
    after = app.database(require_secrets=False).revision()
    if before == after:
        click.echo(f"数据库已是当前版本（{after}），无需迁移。")
    elif before is None:
        click.echo(f"已创建数据库，当前版本 {after}。")
    else:
        click.echo(f"已把数据库从版本 {before} 迁移到 {after}。")


@main.command()
@click.argument("path", type=click.Path(path_type=Path), metavar="路径")
@click.option("--run-pg-dump", is_flag=True,
              help="数据库为 PostgreSQL 时直接运行 pg_dump 备份（须已安装 pg_dump）；不加此项时只显示应运行的命令。")
@click.pass_obj
def backup(app: AppContext, path: Path, run_pg_dump: bool) -> None:
    """备份数据库。服务运行时也可以备份，备份内容是某一时刻完整一致的数据。

    路径为文件时备份到该文件（文件不能已存在）；为文件夹时在其中新建按时间命名的文件。

    SQLite 数据库由 zhoubao 直接复制。PostgreSQL 数据库只显示应运行的 pg_dump 命令，加 --run-pg-dump 时直接运行。

    备份前不升级数据库。
    """
    from sqlalchemy.engine import make_url

    from service.backup import backup_postgresql, backup_sqlite_file
    from store.backup import BackupError

    settings = app.settings(require_secrets=False)
    url = make_url(settings.database.url)
    stamp = app.clock.now().astimezone(settings.campaign.timezone).strftime("%Y%m%d-%H%M%S")
    try:
        if url.get_backend_name() == "sqlite":
            click.echo(backup_sqlite_file(url, path, stamp))
        else:
            click.echo(backup_postgresql(url, path, stamp, run_pg_dump))
    except BackupError as err:
        raise UserError(err.reason) from err


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("zhoubao-demo"), show_default=True,
              help="演示数据（SQLite 数据库、配置）存放的目录。")
def demo(directory: Path) -> None:
    """演示：在本机 127.0.0.1 启动临时邮件服务器，处理几封示例乡镇来信并显示结果。"""
    from service.demo import run_demo

    sys.exit(run_demo(directory))


@main.command()
@click.option("--week", type=int, metavar="周次",
              help="要查看的周次；默认为截止时间已过的最近一周，活动开始前为第一周。")
@click.pass_obj
def status(app: AppContext, week: int | None) -> None:
    """列出某一周各单位的报送情况：已按时报送、逾期报送、已退回未更正或未报送。"""
    from service.notices import default_week, format_status, week_status

    settings = app.settings(require_secrets=False)
    calendar = settings.campaign.calendar()
    now = app.clock.now()
    if week is None:
        week = default_week(calendar, now)
    if week is None or not 1 <= week <= calendar.last_week:
        raise UserError(f"周次 {week} 不在本次活动的范围内：应为 1 到 {calendar.last_week} 之间的整数。")

    database = app.database(require_secrets=False)
    with database.session() as session:
        click.echo(format_status(settings, week_status(settings, session, week, now), week))


@main.command()
@click.option("--dry-run", is_flag=True, help="只列出现在应发送的通知（类型、单位、收件人、主题），不发送也不写入数据库。")
@click.pass_obj
def remind(app: AppContext, dry_run: bool) -> None:
    """发送此刻到期、尚未发送的截止前提醒、逾期通知和每周汇总（服务运行时会自动发送）。

    本命令不收信：单位刚发来、尚未处理的报表不计入。要先收信再发送，请用 run --once。
    """
    from service.notices import format_plan, plan_notices

    settings = app.settings(require_secrets=not dry_run)
    database = app.database(require_secrets=False)
    with database.session() as session:
        planned = plan_notices(settings, session, app.clock.now())
        click.echo(format_plan(settings, planned))
        # Planning only reads, so nothing is left to commit.
        session.rollback()
    if dry_run or not planned:
        return

    from service.runtime import notices_job, outbox_job

    if not notices_job(settings, database, app.clock):
        raise UserError("通知未能放入发送队列：数据库出错，详见日志。")
    if not outbox_job(settings, database, app.clock):
        raise UserError("部分通知未能发出，已留在发送队列中，服务运行时会按间隔重试。"
                        "请检查配置文件 [smtp] 一节和网络，详见日志。")
    click.echo("以上通知已发送。")


@main.command()
@click.option("--save", "folder", type=click.Path(file_okay=False, path_type=Path), metavar="文件夹",
              help="把各单位总结材料中的文件保存到该文件夹下，每个单位一个子文件夹。")
@click.pass_obj
def materials(app: AppContext, folder: Path | None) -> None:
    """列出各单位报送的总结材料（文件和超大附件下载链接）；加 --save 把文件保存出来。"""
    from service.materials import materials_as_text, save_materials

    settings = app.settings(require_secrets=False)
    database = app.database(require_secrets=False)
    click.echo(materials_as_text(database, settings.campaign.timezone))
    if folder is not None:
        written = save_materials(database, folder)
        click.echo(f"\n已保存 {len(written)} 个文件到 {folder}。")


@main.command()
@click.option("--week", type=int, metavar="周次", help="只列出该周的报表；默认列出截至目前的各周。")
@click.pass_obj
def findings(app: AppContext, week: int | None) -> None:
    """列出已登记报表中需要核实的数据（累计数对不上、村数超过本单位村数）及是否已说明。"""
    from service.notices import accepted_reports, findings_of, format_findings

    settings = app.settings(require_secrets=False)
    calendar = settings.campaign.calendar()
    weeks = [week] if week is not None else calendar.weeks()
    database = app.database(require_secrets=False)
    with database.session() as session:
        accepted = accepted_reports(settings, session, app.clock.now())
        click.echo(format_findings(findings_of(settings, session, accepted, weeks)))


@main.command()
@click.argument("submission_id", type=int, metavar="报表编号")
@click.argument("checks", nargs=-1, metavar="[检查项...]")
@click.option("--note", default="", help="说明的内容，例如“已电话核实，上周漏报2场”。")
@click.pass_obj
def explain(app: AppContext, submission_id: int, checks: tuple[str, ...], note: str) -> None:
    """把一份报表需要核实的数据标为已说明（报表编号和检查项见 zhoubao findings）。

    不写检查项时，该报表的各项均标为已说明。
    """
    from service.notices import accepted_reports, findings_of
    from store import repository

    settings = app.settings(require_secrets=False)
    database = app.database(require_secrets=False)
    with database.session() as session:
        accepted = accepted_reports(settings, session, app.clock.now())
        found = [item for item in findings_of(settings, session, accepted, settings.campaign.calendar().weeks())
                 if item.submission_id == submission_id]
        if not found:
            raise UserError(f"报表 #{submission_id} 没有需要核实的数据。请用 zhoubao findings 查看报表编号。")
        codes = [str(item.finding.check) for item in found]
        unknown = [check for check in checks if check.upper() not in codes]
        if unknown:
            raise UserError(f"报表 #{submission_id} 没有检查项 {'、'.join(unknown)}，"
                            f"该报表需要核实的是：{'、'.join(codes)}。")
        chosen = [check.upper() for check in checks] or codes
        for code in chosen:
            repository.explain_finding(session, submission_id, code, note, app.clock.now())
    click.echo(f"已把报表 #{submission_id}（{found[0].unit}第{found[0].week}周）的 {'、'.join(chosen)} 标为已说明。")


@main.command()
@click.option("--json", "as_json", is_flag=True,
              help="以 JSON 输出，供监控程序读取：一个邮箱时为一个对象，多个邮箱时为对象的数组；"
                   "无法读取数据库时输出 {\"healthy\": false, \"problems\": [\"database\"], \"error\": …}。")
@click.pass_obj
def health(app: AppContext, as_json: bool) -> None:
    """显示收信状态：最近一轮收信、最近一次成功、连续失败次数和发送队列。

    退出码：0 表示正常，1 表示异常（连续失败达到报警次数、长时间没有完成收信，或无法读取数据库），
    可用于监控程序、systemd 定时器或 Docker HEALTHCHECK。
    """
    from service.health_text import format_health, health_as_dict
    from service.intake import mailbox_key
    from service.monitor import health_policy, mailbox_label, read_health
    from store.health import outbox_counts

    deployments = app.deployments(require_secrets=False)
    try:
        database = app.current_database()
    except UserError as err:
        if not as_json:
            raise
        # A monitor parses stdout, so the failure comes as JSON too.
        click.echo(json.dumps({"healthy": False, "problems": ["database"], "error": err.format_message()},
                              ensure_ascii=False, indent=2))
        sys.exit(1)
    reports, healthy = [], True
    with database.session() as session:
        outbox = {str(status): count for status, count in outbox_counts(session).items()}
        for settings in deployments:
            state = read_health(session, settings, app.clock.now())
            healthy = healthy and state.healthy
            reports.append((settings, state))
    if as_json:
        items = [health_as_dict(state, mailbox_key(settings), outbox) for settings, state in reports]
        click.echo(json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False, indent=2))
    else:
        click.echo("\n\n".join(format_health(state, health_policy(settings), mailbox_label(settings), outbox,
                                             settings.campaign.timezone) for settings, state in reports))
    sys.exit(0 if healthy else 1)


@main.command()
@click.pass_obj
def doctor(app: AppContext) -> None:
    """逐项检查运行条件：配置文件、数据库、收信和发信登录、磁盘空间、LibreOffice 和时区。

    每项一行：✓ 通过，! 警告（不影响收报），✗ 未通过（附处理办法）。有未通过的项目时退出码为 1。
    本命令不发送邮件，不移动邮件，也不修改数据库。
    """
    from service.checks import exit_code, format_report
    from service.doctor import run_checks

    results = run_checks(app.config_path, app.clock.now(), app.mailbox)
    click.echo(format_report(results))
    sys.exit(exit_code(results))
