"""A private PostgreSQL + PostGIS cluster for the project, run from the machine's binaries.

The cluster lives in its own data directory, listens on 127.0.0.1 only, on its own port, with no
Unix socket, and password authentication. As root it runs as an unprivileged system user, since
PostgreSQL refuses to run as root. Missing PostgreSQL or PostGIS are installed with apt where
that is possible (Debian/Ubuntu, root or password-less sudo).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from layers.errors import SetupError
from layers.store.db import BUREAU_TIMEZONE
from layers.store.roles import API_ROLE

MIN_MAJOR = 15
SUPERUSER = "citygrid"
SERVICE_USER = "postgres"
DEBIAN_LIB = Path("/usr/lib/postgresql")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Server:
    """One installed PostgreSQL server version."""

    major: int
    bindir: Path
    sharedir: Path

    @property
    def has_postgis(self) -> bool:
        """Whether PostGIS is installed for this server."""
        return any((self.sharedir / "extension").glob("postgis.control"))

    def tool(self, name: str) -> str:
        """Absolute path of one of the server's programs."""
        return str(self.bindir / name)


class State(StrEnum):
    """What `db status` can report."""

    ABSENT = "absent"
    STOPPED = "stopped"
    RUNNING = "running"


def _debian_servers() -> list[Server]:
    servers = []
    for bindir in DEBIAN_LIB.glob("*/bin"):
        version = bindir.parent.name
        if version.isdigit() and (bindir / "postgres").exists():
            share = Path("/usr/share/postgresql") / version
            servers.append(Server(int(version), bindir, share))
    return servers


def _path_server() -> Server | None:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir", "--sharedir", "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"(\d+)", out[2])
    bindir = Path(out[0])
    if not match or not (bindir / "postgres").exists():
        return None
    return Server(int(match.group(1)), bindir, Path(out[1]))


def find_server() -> Server | None:
    """The newest installed PostgreSQL server of a supported version, PostGIS-equipped first."""
    candidates = _debian_servers()
    path_server = _path_server()
    if path_server:
        candidates.append(path_server)
    usable = [s for s in candidates if s.major >= MIN_MAJOR]
    if not usable:
        return None
    return max(usable, key=lambda s: (s.has_postgis, s.major))


def _can_apt() -> list[str] | None:
    """The command prefix that runs apt-get as root here, or None when that is impossible."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return [sudo, "-n"]
    return None


def _apt_install(prefix: list[str], packages: Sequence[str], log: Log) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log(f"Installing {' '.join(packages)} with apt-get")
    subprocess.run(
        [*prefix, "apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL
    )
    result = subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SetupError(
            f"apt-get could not install {' '.join(packages)}: {tail[0]}",
            f"apt-get 无法安装 {' '.join(packages)}：{tail[0]}",
        )


def _missing_message(what: str) -> SetupError:
    hint = "PostgreSQL 15 or newer with PostGIS 3 (Debian/Ubuntu: apt-get install postgresql-15-postgis-3)"
    return SetupError(
        f"{what} is not installed and cannot be installed here: install {hint}, "
        "or set CITYGRID_DATABASE_URL to a PostGIS server.",
        f"未安装{what}且无法自动安装：请安装 PostgreSQL 15 及以上版本和 PostGIS 3"
        "（Debian/Ubuntu：apt-get install postgresql-15-postgis-3），或设置 CITYGRID_DATABASE_URL 指向 PostGIS 服务器。",
    )


def ensure_server(log: Log) -> Server:
    """Find PostgreSQL 15+ with PostGIS 3, installing them with apt when they are missing."""
    server = find_server()
    if server and server.has_postgis:
        return server
    prefix = _can_apt()
    if prefix is None:
        raise _missing_message("PostGIS" if server else "PostgreSQL")
    if server is None:
        _apt_install(prefix, ["postgresql", "postgresql-contrib"], log)
        server = find_server()
        if server is None:
            raise _missing_message("PostgreSQL")
    _apt_install(prefix, [f"postgresql-{server.major}-postgis-3"], log)
    server = find_server()
    if server is None or not server.has_postgis:
        raise _missing_message("PostGIS")
    return server


@dataclass(frozen=True)
class Cluster:
    """The project's own PostgreSQL cluster under `state_dir`."""

    state_dir: Path
    port: int

    @property
    def data_dir(self) -> Path:
        """Where the cluster's files live."""
        return self.state_dir / "postgres"

    @property
    def password_file(self) -> Path:
        """The superuser password, readable by the project's user only."""
        return self.state_dir / "postgres.password"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.data_dir / "server.log"

    @property
    def api_password_file(self) -> Path:
        """The password of the API's role, readable by the project's user only."""
        return self.state_dir / "api.password"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of a database in this cluster, as the superuser (who owns the schema)."""
        return self._url(SUPERUSER, self.password_file, database)

    def api_url(self, database: str) -> str:
        """SQLAlchemy URL of a database in this cluster, as the API's role."""
        return self._url(API_ROLE, self.api_password_file, database)

    def api_password(self) -> str:
        """The API role's password, made on first use."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.api_password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.api_password_file.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
        return self.api_password_file.read_text().strip()

    def _url(self, user: str, password_file: Path, database: str) -> str:
        if not password_file.exists():
            raise SetupError(
                f"The local database cluster in {self.data_dir} has not been set up: run `citygrid db up`.",
                f"本地数据库集群 {self.data_dir} 尚未准备好：请先运行 `citygrid db up`。",
            )
        password = quote(password_file.read_text().strip(), safe="")
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def state(self) -> State:
        """Whether the cluster exists and runs."""
        if not (self.data_dir / "PG_VERSION").exists():
            return State.ABSENT
        server = find_server()
        if server is None:
            return State.STOPPED
        code = self._run(server, ["pg_ctl", "status", "-D", str(self.data_dir)], check=False)
        return State.RUNNING if code == 0 else State.STOPPED

    def up(self, log: Log) -> bool:
        """Create and start the cluster as needed; True when this call started it."""
        server = ensure_server(log)
        if not (self.data_dir / "PG_VERSION").exists():
            self._init(server, log)
        if self.state() is State.RUNNING:
            return False
        log(f"Starting PostgreSQL {server.major} on 127.0.0.1:{self.port}")
        code = self._run(
            server,
            [
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",  # the configured port, also for a cluster made with another
            ],
            check=False,
        )
        if code != 0:
            raise SetupError(
                f"PostgreSQL did not start on port {self.port}; see {self.log_file} "
                "(is another server using that port? set CITYGRID_CLUSTER_PORT).",
                f"PostgreSQL 未能在端口 {self.port} 启动，请查看 {self.log_file}"
                "（端口是否被占用？可设置 CITYGRID_CLUSTER_PORT）。",
            )
        return True

    def down(self, log: Log) -> bool:
        """Stop the cluster; True when it was running."""
        if self.state() is not State.RUNNING:
            return False
        server = find_server()
        assert server is not None
        log("Stopping PostgreSQL")
        self._run(server, ["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir)])
        return True

    def _init(self, server: Server, log: Log) -> None:
        log(f"Creating a PostgreSQL {server.major} cluster in {self.data_dir}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.state_dir / ".initdb-password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        owner = _service_account()
        if owner:
            _check_reachable(self.data_dir, owner)
            shutil.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
            shutil.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            self._run(
                server,
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(_server_config(self.port))

    def _run(self, server: Server, argv: list[str], check: bool = True) -> int:
        owner = _service_account()
        cmd = [server.tool(argv[0]), *argv[1:]]
        if owner:
            cmd = ["runuser", "-u", owner.pw_name, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SetupError(f"{argv[0]} failed: {detail[0]}", f"{argv[0]} 执行失败：{detail[0]}")
        return result.returncode


def _server_config(port: int) -> str:
    return (
        "\n# citygrid: private cluster, loopback only\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {port}\n"
        "unix_socket_directories = ''\n"
        "shared_buffers = '512MB'\n"
        "work_mem = '32MB'\n"
        "maintenance_work_mem = '256MB'\n"
        "max_wal_size = '2GB'\n"
        f"timezone = '{BUREAU_TIMEZONE}'\n"
        "jit = off\n"
    )


def _service_account() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVICE_USER)


def _check_reachable(path: Path, owner: pwd.struct_passwd) -> None:
    """Fail clearly when the service account cannot reach the data directory."""
    probe = subprocess.run(
        ["runuser", "-u", owner.pw_name, "--", "test", "-x", str(path.parent)], capture_output=True
    )
    if probe.returncode != 0:
        raise SetupError(
            f"The user {owner.pw_name} cannot reach {path.parent}: make the directories above it "
            "readable (chmod o+x) or set CITYGRID_STATE_DIR to another place.",
            f"用户 {owner.pw_name} 无法访问 {path.parent}：请为其上级目录增加访问权限（chmod o+x），"
            "或设置 CITYGRID_STATE_DIR 到其他目录。",
        )
