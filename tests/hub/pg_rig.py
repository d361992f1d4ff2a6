"""A throw-away PostgreSQL cluster for the tests: Debian's ``initdb`` into a temporary folder,
the server on a free 127.0.0.1 port with its socket in that folder (never the machine's own
server). As root it runs as an unprivileged user (PostgreSQL refuses root). One cluster per
pytest worker; each test gets its own database."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.mqtt.rig import free_port

START_TIMEOUT_S = 30.0


def pg_bin(tool: str) -> str:
    """A PostgreSQL server tool, from Debian's versioned folder (newest first) or the PATH."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{folder}/{tool}", os.X_OK):
            return f"{folder}/{tool}"
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {tool} is not installed (scripts/test.sh installs it)")
    return found


def _server_user() -> str | None:
    """Who runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@dataclass
class Postgres:
    """One cluster; :meth:`restart` keeps its data and port."""

    folder: Path
    port: int
    user: str = "spotter"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        who = _server_user()
        prefix = ["runuser", "-u", who, "--"] if who else []
        done = subprocess.run(
            [*prefix, *argv], capture_output=True, timeout=timeout, cwd=self.folder, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:1])} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def init(self) -> None:
        who = _server_user()
        if who is not None:
            record = pwd.getpwnam(who)
            os.chown(self.folder, record.pw_uid, record.pw_gid)
        self._run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "postgres.log"),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its address."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name the tests make, not user input
        return self.dsn(name)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def start_cluster(folder: Path) -> Postgres:
    pg = Postgres(folder, free_port())
    pg.init()
    pg.start()
    pg.wait_ready()
    return pg
