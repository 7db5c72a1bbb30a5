"""A server install: the configuration file, `citygrid init`, `citygrid check`, the service units."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app
from api.config_file import CONFIG_ENV, known_keys, render_config, settings_classes
from api.settings import (
    AuthSettings,
    DatabaseSettings,
    DemoSettings,
    EditingSettings,
    ServerSettings,
)
from layers.errors import ConfigError
from layers.store import db, roles
from tests.databases import PgServer
from tests.support import assert_clear_failure, citygrid

# Settings a test's commands must take from their file, not from the tests' environment.
FROM_FILE = (
    "CITYGRID_DATABASE_URL",
    "CITYGRID_MIGRATION_DATABASE_URL",
    "CITYGRID_SECRET_KEY",
    "CITYGRID_STATE_DIR",
)


def cli(*args: str, **env: str | None) -> Result:
    """Run a `citygrid` command in this process (CITYGRID_CONFIG restored afterwards)."""
    overrides: dict[str, str | None] = {name: None for name in FROM_FILE}
    return CliRunner().invoke(app, list(args), env={CONFIG_ENV: None, **overrides, **env})


def test_every_settings_class_reads_the_file() -> None:
    from pydantic_settings import BaseSettings

    import api.settings

    declared = [
        cls
        for cls in vars(api.settings).values()
        if isinstance(cls, type)
        and issubclass(cls, BaseSettings)
        and cls.__module__ == "api.settings"
    ]
    assert declared and set(declared) <= set(settings_classes())


def test_the_written_file_lists_every_setting_commented(tmp_path: Path) -> None:
    written = render_config({})
    assert tomllib.loads(written) == {}
    for cls in settings_classes():
        for name, field in cls.model_fields.items():
            env = field.validation_alias if isinstance(field.validation_alias, str) else None
            variable = (env or f"{cls.model_config.get('env_prefix')}{name}").upper()
            key = variable.lower().removeprefix("citygrid_")
            assert f"\n# {key} = " in written, key
            assert f"({variable})" in written, variable
    assert "# database_url =   (unset)" in written
    assert "# port = 8000" in written and '# basemap = "none"' in written


def test_settings_come_from_the_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "citygrid.toml"
    path.write_text(
        'port = 9123\nworkers = 3\ndemo = "none"\ndemo_seed = 7\nmax_upload_bytes = 123456\n'
        'trusted_proxies = "10.0.0.0/8"\nsecret_key = "k' + "x" * 40 + '"\n'
        'state_dir = "/srv/citygrid"\nbasemap = "osm"\n',
        encoding="utf-8",
    )
    for name in ("CITYGRID_PORT", "CITYGRID_WORKERS", "CITYGRID_DEMO", "CITYGRID_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    monkeypatch.setenv("CITYGRID_DEMO_SEED", "11")
    server, demo = ServerSettings(), DemoSettings()
    assert (server.port, server.workers) == (9123, 3)
    assert (demo.load, demo.seed) == ("none", 11)  # the environment wins
    assert EditingSettings().max_upload_bytes == 123456
    auth = AuthSettings()
    assert auth.trusted_proxies == "10.0.0.0/8" and auth.signing_key().startswith("kxxx")
    assert DatabaseSettings().state_dir == Path("/srv/citygrid") == auth.state_dir


def test_unknown_keys_in_the_file_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "citygrid.toml"
    path.write_text('port = 8000\ndatabse_url = "x"\n[server]\nworkers = 2\n', encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    with pytest.raises(ConfigError) as refused:
        ServerSettings()
    assert refused.value.details["unknown"] == ["databse_url", "server"]
    assert "databse_url" in refused.value.message_zh
    result = cli("check", "--config", str(path))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "databse_url, server" in result.stdout
    missing = citygrid("db", "status", env={CONFIG_ENV: str(tmp_path / "nowhere.toml")})
    assert_clear_failure(missing, "does not exist")


def test_init_writes_a_private_file_with_a_new_key_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "citygrid.toml"
    first = cli(
        "init", "--config", str(path), "--state-dir", str(tmp_path / "state"), "--skip-database"
    )
    assert first.exit_code == 0, first.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(values) == {"secret_key", "state_dir"} and set(values) <= known_keys()
    assert len(values["secret_key"]) >= 60 and values["state_dir"] == str(tmp_path / "state")
    again = cli("init", "--config", str(path), "--skip-database")
    assert again.exit_code == 0 and "kept" in again.stderr
    assert tomllib.loads(path.read_text(encoding="utf-8"))["secret_key"] == values["secret_key"]
    other = tmp_path / "other.toml"
    cli("init", "--config", str(other), "--skip-database")
    assert tomllib.loads(other.read_text(encoding="utf-8"))["secret_key"] != values["secret_key"]


@pytest.fixture
def bare_database(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """An empty database on the test server: (the API's URL, the owner's URL)."""
    name = f"citygrid_test_install_{os.getpid()}"
    db.drop_database(pg_server.admin_url, name)
    db.ensure_database(pg_server.admin_url, name)
    try:
        yield pg_server.api_url(name), pg_server.url(name)
    finally:
        db.drop_database(pg_server.admin_url, name)


def _init(config: Path, state: Path, api_url: str, owner_url: str) -> None:
    result = cli(
        "init",
        "--config",
        str(config),
        "--state-dir",
        str(state),
        "--database-url",
        api_url,
        "--migration-database-url",
        owner_url,
    )
    assert result.exit_code == 0, result.stderr


def _check(config: Path, **env: str) -> Result:
    return cli("check", "--config", str(config), **env)


def test_init_migrates_a_bare_database_and_check_passes(
    bare_database: tuple[str, str], tmp_path: Path
) -> None:
    api_url, owner_url = bare_database
    config = tmp_path / "citygrid.toml"
    _init(config, tmp_path / "state", api_url, owner_url)
    result = _check(config)
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for phrase in (
        "Configuration",
        "Secret key configured",
        "Database reachable",
        "PostgreSQL",
        "PostGIS",
        f"The API's role {roles.API_ROLE} reads and writes rows only",
        "Schema at the newest revision",
        "Deployment id",
        "free for the",
    ):
        assert any(line.startswith("OK") and phrase in line for line in lines), (phrase, lines)
    assert any(line.startswith("WARN") and "No county stored" in line for line in lines)
    assert "all checks passed" in lines[-1]
    key = tomllib.loads(config.read_text(encoding="utf-8"))["secret_key"]
    password = db.parse_url(api_url).password
    assert password and key
    assert key not in result.stdout + result.stderr
    assert password not in result.stdout + result.stderr


def test_check_fails_on_a_weak_key_and_a_role_that_may_change_the_schema(
    bare_database: tuple[str, str], tmp_path: Path
) -> None:
    api_url, owner_url = bare_database
    config = tmp_path / "citygrid.toml"
    _init(config, tmp_path / "state", api_url, owner_url)
    short = _check(config, CITYGRID_SECRET_KEY="too-short")
    assert short.exit_code == 1
    assert any(x.startswith("FAIL") and "32" in x for x in short.stdout.splitlines())
    owner = db.make_engine(owner_url)
    try:
        with owner.begin() as conn:
            conn.execute(text(f"GRANT CREATE ON SCHEMA public TO {roles.API_ROLE}"))
            conn.execute(text(f"REVOKE DELETE ON cases FROM {roles.API_ROLE}"))
        broad = _check(config)
        assert broad.exit_code == 1
        assert "FAIL" in broad.stdout and "CREATE ON SCHEMA public" in broad.stdout
        with owner.begin() as conn:
            conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {roles.API_ROLE}"))
        narrow = _check(config)
        assert narrow.exit_code == 1 and "may not write the rows of cases" in narrow.stdout
        with owner.begin() as conn:
            conn.execute(text("DELETE FROM deployment"))
            conn.execute(text(f"GRANT DELETE ON cases TO {roles.API_ROLE}"))
        nameless = _check(config)
        assert nameless.exit_code == 1 and "names no deployment" in nameless.stdout
    finally:
        owner.dispose()


def test_check_without_a_database_fails_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "citygrid.toml"
    config.write_text(
        f'database_url = "postgresql://citygrid_api:x@127.0.0.1:1/nowhere"\nsecret_key = "{"k" * 40}"\n',
        encoding="utf-8",
    )
    result = _check(config)
    assert result.exit_code == 1 and "Traceback" not in result.stdout + result.stderr
    assert any(
        x.startswith("FAIL") and "Cannot connect to the database" in x
        for x in result.stdout.splitlines()
    )


def _install(tmp_path: Path, *extra: str) -> Path:
    config = tmp_path / "citygrid.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\nmax_upload_bytes = 31457280\nport = 8100\n'
        'trusted_proxies = "10.1.0.0/16"\n'
        'database_url = "postgresql://citygrid_api:pw@db.example:5432/citygrid"\n',
        encoding="utf-8",
    )
    (tmp_path / "state").mkdir()
    root = tmp_path / "root"
    result = cli(
        "service", "install", "--config", str(config), "--prefix", str(root), "--user", "citygrid",
        "--workers", "6", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return root


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_service_install_writes_units_and_a_proxy_from_the_settings(tmp_path: Path) -> None:
    root = _install(tmp_path)
    units = root / "etc/systemd/system"
    api = _unit(units / "citygrid-api.service")
    service = api["Service"]
    command = service["ExecStart"].split()
    assert Path(command[0]).is_file() and os.access(command[0], os.X_OK)
    assert command[1:] == ["serve", "--workers", "6"]
    assert service["Environment"] == f"CITYGRID_CONFIG={tmp_path / 'citygrid.toml'}"
    assert service["Restart"] == "on-failure" and service["User"] == "citygrid"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ReadWritePaths": str(tmp_path / "state"),
        "MemoryMax": f"{6 * 1024 + 256}M",  # six workers of the default 1 GB, and the manager
    }.items():
        assert service[key] == value, key
    assert "ExecStartPre" not in service  # the database is a server's, not the own cluster
    assert "postgresql.service" in api["Unit"]["After"]
    assert api["Install"]["WantedBy"] == "multi-user.target"
    gateway = _unit(units / "citygrid-gateway.service")
    assert gateway["Service"]["ExecStart"].split()[1:] == ["tracking", "gateway"]
    assert "tracking gateway" in (units / "citygrid-gateway.service").read_text().split("[Unit]")[0]
    nginx = (root / "etc/nginx/sites-available/citygrid.conf").read_text()
    assert "client_max_body_size 31457280;" in nginx
    assert "server 127.0.0.1:8100;" in nginx
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in nginx
    assert "X-Forwarded-Proto $scheme" in nginx
    assert "10.1.0.0/16" in nginx and "does NOT yet: add 127.0.0.1" in nginx
    assert "proxy_cache citygrid_static" in nginx and "private" in nginx


def test_service_install_dry_run_writes_nothing_and_needs_a_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    config = tmp_path / "citygrid.toml"
    config.write_text("", encoding="utf-8")
    dry = cli("service", "install", "--config", str(config), "--prefix", str(root), "--dry-run")
    assert dry.exit_code == 0 and "[Service]" in dry.stdout and not root.exists()
    own = dry.stdout.split("citygrid-gateway.service ----")[0]
    assert "ExecStartPre=" in own and " db up" in own  # the own cluster starts with the API
    bare = cli("service", "install", "--prefix", str(root))
    assert bare.exit_code == 1 and "--config" in bare.stderr


def test_units_pass_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        message = "systemd-analyze not available: the units were checked as INI files only"
        print(f"\n{'!' * 20}\nSKIPPED {message}\n{'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    units = _install(tmp_path) / "etc/systemd/system"
    result = subprocess.run(
        [analyze, "verify", *map(str, sorted([*units.glob("*.service"), *units.glob("*.timer")]))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # systemd ignores a value it cannot parse with a warning only: none may be ignored.
    assert not re.search(r"Failed to parse|Unknown (key|section)|ignoring", result.stderr), (
        result.stderr
    )


def test_proxy_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )
    if nginx is None:
        message = "nginx not available: the proxy example was checked by its text only"
        print(f"\n{'!' * 20}\nSKIPPED {message}\n{'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    site = _install(tmp_path) / "etc/nginx/sites-available/citygrid.conf"
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=citygrid.test", "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    body = (
        site.read_text()
        .replace("/etc/ssl/citygrid", str(tls))
        .replace("/var/cache/nginx/citygrid", str(tmp_path / "cache"))
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{\naccess_log off;\n{body}\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(main), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_an_invalid_setting_in_the_file_is_one_clear_sentence(tmp_path: Path) -> None:
    config = tmp_path / "citygrid.toml"
    config.write_text("pool_size = 0\n", encoding="utf-8")
    status = cli("--config", str(config), "db", "status")
    assert status.exit_code == 1 and not isinstance(status.exception, ValueError)
    assert "CITYGRID_POOL_SIZE: Input should be greater than or equal to 1" in status.stderr
    config.write_text('demo_seed = "many"\n', encoding="utf-8")
    demo = cli("--config", str(config), "demo", "load")
    assert demo.exit_code == 1 and "CITYGRID_DEMO_SEED" in demo.stderr


def _systemd_running() -> str | None:
    """Why the units cannot be started here, or None when systemd runs this machine."""
    if not Path("/run/systemd/system").is_dir():
        init = Path("/proc/1/comm").read_text(encoding="utf-8").strip()
        return f"systemd is not running here (PID 1 is {init!r})"
    if os.geteuid() != 0:
        return "starting a system unit needs root"
    return None


def test_the_api_unit_starts_and_answers_under_systemd(
    bare_database: tuple[str, str], tmp_path: Path
) -> None:
    reason = _systemd_running()
    if reason is not None:
        message = f"{reason}: the units were verified (systemd-analyze), not started"
        print(f"\n{'!' * 20}\nSKIPPED {message}\n{'!' * 20}", file=sys.stderr)
        pytest.skip(message)
    api_url, owner_url = bare_database
    config = tmp_path / "citygrid.toml"
    _init(config, tmp_path / "state", api_url, owner_url)
    with config.open("a", encoding="utf-8") as out:
        out.write("port = 8137\n")
    root = tmp_path / "root"
    written = cli("service", "install", "--config", str(config), "--prefix", str(root),
                  "--user", "root", "--workers", "2")  # fmt: skip
    assert written.exit_code == 0, written.stderr
    unit = Path("/run/systemd/system/citygrid-api-test.service")  # runtime: gone at reboot
    shutil.copyfile(root / "etc/systemd/system/citygrid-api.service", unit)
    systemctl = ["systemctl", "--no-pager"]
    try:
        subprocess.run([*systemctl, "daemon-reload"], check=True, timeout=60)
        subprocess.run([*systemctl, "start", unit.name], check=True, timeout=120)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get("http://127.0.0.1:8137/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the unit started but never became ready"
            time.sleep(0.5)
    finally:
        subprocess.run([*systemctl, "stop", unit.name], check=False, timeout=120)
        unit.unlink(missing_ok=True)
        subprocess.run([*systemctl, "daemon-reload"], check=False, timeout=60)
