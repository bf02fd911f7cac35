"""A throwaway PostgreSQL server for the tests, started from the binaries on this machine.

``initdb`` into a new temporary directory, then the server on 127.0.0.1 at a free port,
its Unix socket inside that directory (not /var/run/postgresql, where a system server may
be), a fresh database per test, everything removed when the session ends. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` system user
(Debian's package makes it), through ``runuser``.

Run as a script it prints the directory of the binaries, or exits 1 where there are
none: ``.ci/run`` asks it whether to install Debian's ``postgresql`` package.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REQUIRE = "CAMPAIGN_RUNNER_REQUIRE_POSTGRES"  # "1": a missing server fails the tests
SERVER_USER = "postgres"
SUPERUSER = "campaign"


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else the newest of Debian's
    /usr/lib/postgresql/*/bin (its package puts them nowhere else)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        # Resolved, so that a symlink on PATH leads to the directory that holds postgres too.
        return Path(found).resolve().parent
    debian = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    usable = [d for d in debian if (d / "pg_ctl").exists()]
    if not usable:
        return None
    return max(usable, key=lambda d: [int(n) for n in re.findall(r"\d+", d.parent.name)])


def unavailable() -> str | None:
    """Why no server can be started here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg cannot be imported ({exc}): install campaign-runner[test]"
    if find_bindir() is None:
        return "PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root, and no runuser to start PostgreSQL as another user"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root, and no {SERVER_USER!r} user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One running server; :meth:`create_database` gives each test its own database."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="campaign-runner-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        # Characters a URL must escape, so that the tests see the ledger hide it anyway.
        self.password = f"p@ss:{secrets.token_hex(6)}/%"
        self.port = 0
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", SERVER_USER, "--"]

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{log}")

    def start(self) -> None:
        pwfile = self.root / "password"
        pwfile.write_text(self.password + "\n")
        if self._as:
            shutil.chown(pwfile, SERVER_USER)
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}"),
            # Passwords over TCP, as a shared server would ask; the socket is ours alone.
            *("--auth-host=scram-sha-256", "--auth-local=trust"),
            *("--encoding=UTF8", "--locale=C", "--no-sync"),
        )
        pwfile.unlink()
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.root}"
            )
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                          "-o", options, "start")  # fmt: skip
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def url(self, database: str) -> str:
        password = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL (with the password)."""
        import psycopg

        name = f"ledger_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> tuple[PgServer, float]:
    """A running server, and how many seconds it took to start."""
    bindir = find_bindir()
    assert bindir is not None
    began = time.monotonic()
    server = PgServer(bindir)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(server.root, ignore_errors=True)
        raise
    return server, time.monotonic() - began


if __name__ == "__main__":
    bindir = find_bindir()
    if bindir is None:
        sys.exit(1)
    print(bindir)
