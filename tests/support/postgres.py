"""A real PostgreSQL server for the tests: installed from Debian's packages when missing, started on
a loopback port in a temporary data directory, stopped at the end of the run.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user that
Debian's package creates. When the server truly cannot start (no binaries and no way to install
them), :func:`start_postgres` raises :class:`PostgresUnavailable` with the reason, and the tests
that need it are skipped with that reason.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.bot_process import free_port

__all__ = ["BACKENDS", "PostgresServer", "PostgresUnavailable", "start_postgres"]

BACKENDS = ("sqlite", "postgresql")
"""The databases tests marked ``both_databases`` (and the end-to-end harness) run on."""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be installed or started here; the message says why."""


def _binaries() -> Path | None:
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _install() -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresUnavailable("PostgreSQL is not installed and apt-get cannot run here (needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0 and command[1] == "install":
            raise PostgresUnavailable(f"apt-get install postgresql failed: {result.stderr[-500:]}")


@dataclass
class PostgresServer:
    """One running server; :meth:`create_database` hands each test a fresh database."""

    bin_dir: Path
    root: Path
    port: int
    user: str | None
    """The system user the server runs as (``postgres`` when the tests run as root)."""
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / command[0]), *command[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        result = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {result.stderr[-500:]}")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=400"
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start"
        )
        if result.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-500:]
            raise PostgresUnavailable(f"pg_ctl start failed: {result.stderr[-300:]} {log}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                *self.connection_args(database),
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {result.stderr}")
        return result.stdout.strip()

    def connection_args(self, database: str) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL (asyncpg driver)."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


def start_postgres() -> PostgresServer:
    """Install (when missing) and start a server; raises :class:`PostgresUnavailable` with why not."""
    bin_dir = _binaries()
    if bin_dir is None:
        _install()
        bin_dir = _binaries()
        if bin_dir is None:
            raise PostgresUnavailable("apt-get installed postgresql but no initdb was found")
    user: str | None = None
    root = Path(tempfile.mkdtemp(prefix="bot-pg-"))
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "running as root and there is no postgres user to run the server"
            ) from None
        user = "postgres"
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, root, free_port(), user)
    started = time.monotonic()
    server.start()
    if time.monotonic() - started > 60:
        raise PostgresUnavailable("PostgreSQL took over a minute to start")
    return server
