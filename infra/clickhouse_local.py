"""The local ClickHouse server: Debian's package, our own config, run detached.

State under ``<state_dir>/clickhouse/``::

    config.xml, users.xml    generated on every start (ports from Settings, 127.0.0.1 only)
    users.d/analyst.xml      the read-only analyst user (rewritten by every `infra up`, reloaded live)
    analyst.password         its password unless clickhouse_analyst_password is set (0600)
    data/ tmp/ user_files/ format_schemas/
    log/                     clickhouse-server.log, .err.log (the server's logger), stdout.log
    clickhouse.pid
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from hzbus.config import Settings
from hzbus.errors import UserError
from infra import procs

HERE = Path(__file__).resolve().parent / "clickhouse"
PACKAGES = ("clickhouse-server", "clickhouse-client")
READY_BUDGET_S = 60.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ClickHousePaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.xml"

    @property
    def users(self) -> Path:
        return self.root / "users.xml"

    @property
    def users_d(self) -> Path:
        """Extra users files, merged into users.xml and reloaded by the server on change."""
        return self.root / "users.d"

    @property
    def analyst_password(self) -> Path:
        return self.root / "analyst.password"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "clickhouse-server.log"

    @property
    def err_log(self) -> Path:
        return self.log_dir / "clickhouse-server.err.log"

    @property
    def stdout_log(self) -> Path:
        return self.log_dir / "stdout.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "clickhouse.pid"


def paths(settings: Settings) -> ClickHousePaths:
    return ClickHousePaths(Path(settings.state_dir).resolve() / "clickhouse")


def is_local(settings: Settings) -> bool:
    return settings.clickhouse_host in LOCAL_HOSTS


def server_binary() -> str | None:
    found = shutil.which("clickhouse-server")
    if found:
        return found
    for candidate in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _apt_install() -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def ensure_package() -> str:
    """``clickhouse-server`` on this machine (apt-get install when missing; needs root)."""
    found = server_binary()
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise UserError(
            "clickhouse-server is not installed and apt-get is not available; install "
            "ClickHouse yourself or point HZBUS_CLICKHOUSE_HOST at an existing server"
        )
    if os.geteuid() != 0:
        raise UserError(
            f"clickhouse-server is not installed; run as root: apt-get install -y {' '.join(PACKAGES)}"
        )
    procs.say(f"installing {' '.join(PACKAGES)} with apt-get… ", end="")
    started = time.monotonic()
    result = _apt_install()
    if result.returncode != 0:
        procs.say("package lists first (apt-get update)… ", end="")
        update = subprocess.run(["apt-get", "update"], capture_output=True, text=True, check=False)
        if update.returncode != 0:
            procs.say("failed")
            raise UserError("apt-get update failed:\n" + "\n".join(update.stderr.splitlines()[-15:]))
        result = _apt_install()
    found = server_binary()
    if result.returncode != 0 or not found:
        procs.say("failed")
        raise UserError(
            f"apt-get install {' '.join(PACKAGES)} failed:\n"
            + "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        )
    procs.say(f"ok ({time.monotonic() - started:.1f} s)")
    return found


def write_config(settings: Settings) -> None:
    p = paths(settings)
    for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
        (p.root / sub).mkdir(parents=True, exist_ok=True)
    host = settings.clickhouse_host
    values = {
        "root": str(p.root),
        "listen_host": "127.0.0.1" if host == "localhost" else host,
        "tcp_port": settings.clickhouse_port,
        "http_port": settings.clickhouse_http_port,
    }
    for template, target in (("config.template.xml", p.config), ("users.template.xml", p.users)):
        text = Template((HERE / template).read_text(encoding="utf-8")).substitute(values)
        target.write_text(text, encoding="utf-8")
    write_analyst_user(settings)


# ---------------------------------------------------------------------------------------------
# the read-only analyst user [信息资源共享机制 五]

#: the demo's database (hzbus/commands/demo.py) is an analysts' database too
DEMO_DATABASE = "hzbus_demo"


def analyst_password(settings: Settings) -> str:
    """``clickhouse_analyst_password``, or one generated once and kept in the state dir (0600)."""
    if settings.clickhouse_analyst_password:
        return settings.clickhouse_analyst_password
    path = paths(settings).analyst_password
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(18) + "\n")
    return path.read_text(encoding="utf-8").strip()


def analyst_user_xml(user: str, password: str, databases: list[str]) -> str:
    """The users.d file of a read-only user (profile ``readonly``: no INSERT, ALTER, DROP,
    SET or table functions) restricted to ``databases``."""
    for name in (user, *databases):
        if not _XML_NAME.match(name):
            raise UserError(f"{name!r} cannot be a ClickHouse user or database name here")
    return Template((HERE / "analyst.template.xml").read_text(encoding="utf-8")).substitute(
        user=user,
        password_sha256=hashlib.sha256(password.encode("utf-8")).hexdigest(),
        databases="\n".join(f"                <database>{db}</database>" for db in databases),
    )


def write_analyst_user(
    settings: Settings,
    *,
    user: str | None = None,
    password: str | None = None,
    databases: list[str] | None = None,
) -> Path:
    """Write (or refresh) ``users.d/<user>.xml`` of the local server; the server reloads users
    files by itself within seconds, no restart. Defaults: ``clickhouse_analyst_user``, its
    password, and the bus's database plus the demo's."""
    user = user or settings.clickhouse_analyst_user
    password = password if password is not None else analyst_password(settings)
    databases = databases or sorted({settings.clickhouse_database, DEMO_DATABASE})
    text = analyst_user_xml(user, password, databases)
    target = paths(settings).users_d / f"{user}.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        tmp.replace(target)  # the reloader never sees half a file
    return target


def remove_user(settings: Settings, user: str) -> None:
    (paths(settings).users_d / f"{user}.xml").unlink(missing_ok=True)


def running_pid(settings: Settings) -> int | None:
    p = paths(settings)
    return procs.our_pid(p.pidfile, ["clickhouse", f"--config-file={p.config}"])


def spawn(settings: Settings, binary: str) -> int:
    p = paths(settings)
    argv = [binary, f"--config-file={p.config}"]
    return procs.spawn(
        argv, cwd=p.root, output=p.stdout_log, pidfile=p.pidfile, tied=settings.services_die_with_parent
    )


_probing = threading.local()


class _QuietWhileProbing(logging.Filter):
    """Drops clickhouse_driver's "Failed to connect" tracebacks while *we* probe for the server."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_probing, "active", False)


logging.getLogger("clickhouse_driver.connection").addFilter(_QuietWhileProbing())


def version(settings: Settings, timeout: float = 5.0) -> str | None:
    """``SELECT version()``, or None when nothing answers."""
    from clickhouse_driver import Client

    # no bare TCP probe first: 18.16 logs "Client has not sent any data" for each one
    client = Client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password,
        connect_timeout=min(timeout, 3.0),
        send_receive_timeout=timeout,
        sync_request_timeout=timeout,
    )
    _probing.active = True
    try:
        rows = client.execute("SELECT version()")
    except Exception:
        return None
    finally:
        _probing.active = False
        client.disconnect()
    return str(rows[0][0]) if rows else None


def log_tail(settings: Settings, lines: int = 30) -> str:
    p = paths(settings)
    parts = []
    for path in (p.err_log, p.stdout_log):
        text = procs.tail(path, lines)
        if text.strip():
            parts.append(f"--- {path} (last {lines} lines)\n{text}")
    return "\n".join(parts) or f"(no log output in {p.log_dir})"


def wait_ready(settings: Settings, pid: int | None, budget: float = READY_BUDGET_S) -> float:
    started = time.monotonic()
    procs.say("waiting for ClickHouse… ", end="")
    while True:
        found = version(settings, timeout=2.0)
        if found:
            elapsed = time.monotonic() - started
            procs.say(f"ok, {found} ({elapsed:.1f} s)")
            return elapsed
        if pid is not None and not procs.is_alive(pid):
            procs.say("failed")
            raise UserError(f"clickhouse-server (pid {pid}) exited during start-up.\n{log_tail(settings)}")
        if time.monotonic() - started > budget:
            procs.say("timeout")
            raise UserError(
                f"ClickHouse did not answer on {settings.clickhouse_host}:{settings.clickhouse_port} "
                f"within {budget:.0f} s (pid {pid}; `hzbus infra down` stops it).\n{log_tail(settings)}"
            )
        time.sleep(0.25)
