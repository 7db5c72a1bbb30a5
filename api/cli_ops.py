"""Running citygrid as a bureau's service: `citygrid init`, `citygrid check`, `citygrid service`."""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from api.cli_db import prepare_database
from api.config_file import CONFIG_ENV, read_config, render_config, settings_classes, write_private
from api.console import friendly, say, stdout
from api.service_files import Install, render
from api.settings import (
    AuthSettings,
    DatabaseSettings,
    EditingSettings,
    EvaluationSettings,
    ReportSettings,
    ServerSettings,
)
from layers.cases import evalweights, workcalendar
from layers.errors import CitygridError, ConfigError
from layers.reports import fonts
from layers.store import checkup, db, migrate, roles
from layers.store.checkup import Finding
from layers.store.deployment import deployment_id

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help=f"Configuration file (TOML) to read; sets {CONFIG_ENV} for this command",
    ),
]
service_app = typer.Typer(
    help="The systemd units and reverse-proxy example of a server install.", no_args_is_help=True
)


def use_config(config: Path | None) -> None:
    """Make the settings of this process read `config` (the environment still wins)."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())


def _config_path() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    return Path(named) if named else None


@friendly
def init(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Configuration file to write, e.g. /etc/citygrid/citygrid.toml",
        ),
    ],
    state_dir: Annotated[
        Path | None,
        typer.Option(help="State directory (CITYGRID_STATE_DIR), e.g. /var/lib/citygrid"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The API's database URL (a role with row rights only); unset = own cluster"
        ),
    ] = None,
    migration_database_url: Annotated[
        str | None, typer.Option(help="The same database as the schema's owner")
    ] = None,
    skip_database: Annotated[
        bool, typer.Option("--skip-database", help="Write the file only; touch no database")
    ] = False,
) -> None:
    """Write a commented configuration file with a new secret key, then make the database and
    its roles ready (an existing file is kept as it is)."""
    path = config.resolve()
    if path.exists():
        say(f"{path} exists: kept as it is / 配置文件已存在，保持不变")
    else:
        filled: dict[str, object] = {
            "secret_key": secrets.token_urlsafe(48),
            "state_dir": (state_dir or Path(".citygrid")).resolve(),
        }
        if database_url:
            filled["database_url"] = database_url
        if migration_database_url:
            filled["migration_database_url"] = migration_database_url
        write_private(path, render_config(filled))
        say(f"wrote {path} (readable by you only) / 已写入配置文件（仅本用户可读）")
    use_config(path)
    if not skip_database:
        settings = DatabaseSettings()
        _ensure_api_role(settings)
        prepare_database(settings)
        say("database ready, roles granted / 数据库已就绪，角色权限已授予")
    say(f"next / 下一步: citygrid check --config {path}")


def _ensure_api_role(settings: DatabaseSettings) -> None:
    """On a server given by URL, create the API's role named there when it cannot sign in yet."""
    if settings.uses_own_cluster:
        return  # prepare_database makes the own cluster's role
    api = db.parse_url(settings.url())
    owner = db.make_engine(settings.migration_url())
    try:
        if not api.username or api.username == owner.url.username or api.password is None:
            return
        if _can_connect(settings.url()):
            return
        db.check_connection(owner)
        say(f"creating the API's role {api.username} / 创建 API 角色 {api.username}")
        roles.ensure_login_role(owner, api.username, str(api.password))
    finally:
        owner.dispose()


def _can_connect(url: str) -> bool:
    engine = db.make_engine(url)
    try:
        db.check_connection(engine)
    except CitygridError:
        return False
    finally:
        engine.dispose()
    return True


def _say_finding(finding: Finding) -> None:
    colour = {"OK": "green", "WARN": "yellow", "FAIL": "red"}[finding.level]
    stdout.print(
        f"[{colour}]{finding.level:<4}[/] {finding.zh} / {finding.en}", highlight=False, markup=True
    )


def _configuration() -> list[Finding]:
    """The file parses and every settings class validates."""
    found: list[Finding] = []
    path = _config_path()
    if path is None:
        found.append(
            Finding(
                "WARN",
                f"No configuration file ({CONFIG_ENV} or --config): environment and defaults only",
                f"未指定配置文件（{CONFIG_ENV} 或 --config）：仅使用环境变量和默认值",
            )
        )
    else:
        try:
            read_config(path)
        except ConfigError as exc:
            return [Finding("FAIL", exc.message_en, exc.message_zh)]
        found.append(Finding("OK", f"Configuration {path} read", f"已读取配置文件 {path}"))
    for cls in settings_classes():
        try:
            cls()
        except (ValidationError, ValueError) as exc:
            detail = (
                "; ".join(str(e["msg"]) for e in exc.errors())
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            found.append(
                Finding("FAIL", f"{cls.__name__}: {detail}", f"设置无效 {cls.__name__}：{detail}")
            )
    return found


def weights_finding(path: Path | None) -> Finding:
    """Whether the evaluation's weights file reads and checks out."""
    try:
        evalweights.load(path)
    except ConfigError as exc:
        return Finding("FAIL", exc.message_en, exc.message_zh)
    shown = path or evalweights.PACKAGED
    return Finding("OK", f"Evaluation weights {shown} valid", f"考核权重文件 {shown} 有效")


def _secret_key() -> Finding:
    auth = AuthSettings()
    if auth.secret_key is None:
        return Finding(
            "FAIL",
            "No secret key configured (the development key kept in the state directory is used): "
            "set secret_key, e.g. with `citygrid init`",
            "未配置签名密钥（正在使用状态目录中的开发密钥）：请设置 secret_key（citygrid init 会生成）",
        )
    try:
        auth.signing_key()
    except ValueError as exc:
        return Finding("FAIL", str(exc), "签名密钥至少需要 32 个字符")
    return Finding("OK", "Secret key configured", "已配置签名密钥")


def _database(settings: DatabaseSettings, least_mb: int) -> list[Finding]:
    """Everything asked of the database, as the API's role (and the owner for the data folder)."""
    try:
        engine = db.make_engine(settings.url())
    except CitygridError as exc:
        return [Finding("FAIL", exc.message_en, exc.message_zh)]
    try:
        db.check_connection(engine)
    except CitygridError as exc:
        engine.dispose()
        return [Finding("FAIL", exc.message_en, exc.message_zh)]
    try:
        return _database_findings(engine, settings, least_mb)
    finally:
        engine.dispose()


def calendar_finding(conn: Connection, today: date | None = None) -> Finding:
    """Whether this year's holidays are known (deadlines otherwise count Monday to Friday)."""
    year = (today or date.today()).year
    if workcalendar.unknown_years(conn, range(year, year + 1)):
        return Finding(
            "WARN",
            f"The working calendar lists no holiday for {year}: deadlines count Monday to Friday "
            "until the year's notice is imported (`citygrid calendar import`)",
            f"工作日历中没有 {year} 年的节假日：处置时限按周一至周五计算，"
            "请用 citygrid calendar import 导入当年放假通知",
        )
    return Finding("OK", f"Working calendar knows {year}", f"工作日历已有 {year} 年节假日")


def font_finding() -> Finding:
    """Whether the bulletins have a font with Chinese glyphs (else they cannot be drawn)."""
    try:
        found = fonts.find(ReportSettings().font)
    except CitygridError as exc:
        return Finding("WARN", exc.message_en, exc.message_zh)
    return Finding("OK", f"Bulletin font: {found.path}", f"通报字体：{found.path}")


def _database_findings(engine: Engine, settings: DatabaseSettings, least_mb: int) -> list[Finding]:
    shown = engine.url.render_as_string(hide_password=True)
    found = [Finding("OK", f"Database reachable: {shown}", f"数据库可连接：{shown}")]
    owner = db.parse_url(settings.migration_url()).username
    with engine.connect() as conn:
        found += checkup.versions(conn)
        found.append(checkup.api_role(conn, engine.url.username, owner))
    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        found.append(
            Finding(
                "FAIL",
                f"Schema at {current or 'empty'}, newest {head}: run `citygrid db migrate`",
                f"数据库结构版本为 {current or '空'}，最新为 {head}：请运行 citygrid db migrate",
            )
        )
        return found
    found.append(
        Finding("OK", f"Schema at the newest revision, {head}", f"数据库结构为最新版本 {head}")
    )
    with engine.connect() as conn:
        try:
            deployment = deployment_id(conn)
            found.append(Finding("OK", f"Deployment id {deployment}", f"部署编号 {deployment}"))
        except CitygridError as exc:
            found.append(Finding("FAIL", exc.message_en, exc.message_zh))
        counties = checkup.county_count(conn)
        found.append(calendar_finding(conn))
    if counties:
        found.append(
            Finding("OK", f"{counties} county(ies) stored", f"已有 {counties} 个县级行政区")
        )
    else:
        found.append(
            Finding(
                "WARN",
                "No county stored yet: add one with `citygrid county add`",
                "尚无县级行政区：请用 citygrid county add 添加",
            )
        )
    found += _disks(settings, least_mb)
    return found


def _disks(settings: DatabaseSettings, least_mb: int) -> list[Finding]:
    """Free space where the database's files and the state directory are."""
    found: list[Finding] = []
    data = settings.cluster().data_dir if settings.uses_own_cluster else _server_data_dir(settings)
    if data is not None and data.exists():
        found.append(checkup.free_disk(data, least_mb, "database files", "数据库文件"))
    else:
        found.append(
            Finding(
                "WARN",
                "The database's data directory is not on this machine or not readable: check its "
                "free disk space on the database server",
                "数据库数据目录不在本机或无法读取：请在数据库服务器上检查磁盘剩余空间",
            )
        )
    state = settings.state_dir.resolve()
    if state.exists():
        found.append(checkup.free_disk(state, least_mb, "state directory", "状态目录"))
    return found


def _server_data_dir(settings: DatabaseSettings) -> Path | None:
    engine = db.make_engine(settings.migration_url())
    try:
        with engine.connect() as conn:
            return checkup.data_directory(conn)
    except CitygridError:
        return None
    finally:
        engine.dispose()


@friendly
def check(config: ConfigOption = None) -> None:
    """Check the configuration and the database, one line per finding (OK, WARN, FAIL); exit
    status 1 when anything fails."""
    use_config(config)
    findings = _configuration()
    if not any(f.level == "FAIL" for f in findings):
        findings.append(_secret_key())
        findings.append(weights_finding(EvaluationSettings().evaluation_weights))
        findings.append(font_finding())
        findings += _database(DatabaseSettings(), ServerSettings().min_free_disk_mb)
    for finding in findings:
        _say_finding(finding)
    failed = sum(f.level == "FAIL" for f in findings)
    if failed:
        stdout.print(f"{failed} 项失败 / {failed} check(s) failed", highlight=False)
        raise typer.Exit(1)
    stdout.print("检查通过 / all checks passed", highlight=False)


def _executable() -> Path:
    """The `citygrid` command of this install (beside the interpreter running it)."""
    beside = Path(sys.executable).with_name("citygrid")
    if beside.exists():
        return beside
    return Path(sys.argv[0]).absolute()


@service_app.command("install")
@friendly
def service_install(
    config: ConfigOption = None,
    prefix: Annotated[
        Path, typer.Option(help="Root the files are written under (etc/systemd/system, etc/nginx)")
    ] = Path("/"),
    user: Annotated[
        str | None, typer.Option(help="Account the services run as (default: you)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes")] = 4,
    server_name: Annotated[
        str, typer.Option(help="Host name users open, for the nginx example")
    ] = "citygrid.example.gov.cn",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the files instead of writing them")
    ] = False,
) -> None:
    """Write systemd units for the API, the JT/T 808 gateway and the nightly refresh of the
    merchants' ratings (a timer), and an example nginx site."""
    use_config(config)
    path = _config_path()
    if path is None:
        raise ConfigError(
            f"The units need a configuration file: give --config or set {CONFIG_ENV}",
            f"服务单元需要配置文件：请使用 --config 或设置 {CONFIG_ENV}",
        )
    install = Install(
        config=path.resolve(),
        citygrid=_executable(),
        user=user or getpass.getuser(),
        workers=workers,
        server_name=server_name,
    )
    rendered = render(
        install, DatabaseSettings(), ServerSettings(), EditingSettings(), AuthSettings()
    )
    for item in rendered:
        target = prefix / item.path
        if dry_run:
            stdout.print(f"# ---- {target} ----\n{item.text}", highlight=False, markup=False)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.text, encoding="utf-8")
        say(f"wrote {target}")
    if not dry_run:
        say(
            "next / 下一步: systemctl daemon-reload && systemctl enable --now citygrid-api "
            "citygrid-gateway citygrid-merchants-rerate.timer"
        )
