"""What only the PostgreSQL ledger does: keep its password to itself, say what to install,
and carry on after the server dropped its connection. (The ledger's logic is tested on
both backends in test_ledger.py.)"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pg
import pytest

from campaign_runner.errors import LedgerError
from campaign_runner.ledger import open_ledger
from campaign_runner.ledger.dsn import public_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:s3cret@db.example:5432/ws", "postgresql://ann@db.example:5432/ws"),
        ("postgres://ann:p%40ss@[::1]/ws", "postgres://ann@[::1]/ws"),
        ("postgresql://ann@db/ws", "postgresql://ann@db/ws"),
        ("postgresql:///ws?host=/run/pg", "postgresql:///ws?host=/run/pg"),
        (
            "postgresql://db/ws?password=s3cret&sslmode=require",
            "postgresql://db/ws?sslmode=require",
        ),
    ],
)
def test_the_url_shown_has_no_password(url: str, shown: str) -> None:
    assert public_url(url) == shown


def test_the_ledger_names_its_database_without_the_password(
    postgres_server: pg.PgServer,
) -> None:
    url = postgres_server.create_database()
    with open_ledger(url) as ledger:
        assert ledger.location == public_url(url)
    assert postgres_server.password not in ledger.location
    assert urlsplit(ledger.location).username == pg.SUPERUSER


@pytest.mark.parametrize("password", ["right", "wrong"])
def test_a_ledger_that_cannot_be_opened_says_where_without_the_password(
    postgres_server: pg.PgServer, password: str
) -> None:
    url = postgres_server.url("no_such_database")
    if password == "wrong":
        url = url.replace(":p%40ss", ":wrong-p%40ss")
    with pytest.raises(LedgerError) as raised:
        open_ledger(url)
    message = str(raised.value)
    assert message.startswith(f"{public_url(url)}: cannot open the workspace ledger: ")
    assert "\n" not in message
    assert "p@ss" not in message and "p%40ss" not in message
    assert ("password authentication failed" in message) == (password == "wrong")


def test_a_dropped_connection_fails_one_call_and_the_next_reconnects(
    postgres_server: pg.PgServer,
) -> None:
    import psycopg

    with open_ledger(postgres_server.create_database()) as ledger:
        ledger.campaign("a", "/a.csv", 0.0)
        with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname LIKE 'ledger_%' AND pid <> pg_backend_pid()"
            ).fetchall()
        assert ended == [(True,)]
        with pytest.raises(LedgerError, match="the workspace ledger failed: terminating"):
            ledger.campaigns()
        assert [c.name for c in ledger.campaigns()] == ["a"]


def test_without_psycopg_the_ledger_says_what_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None  # as if it were not installed\n"
        "from campaign_runner.errors import LedgerError\n"
        "from campaign_runner.ledger import open_ledger\n"
        "try:\n"
        "    open_ledger('postgresql://ann:s3cret@db.example/ws')\n"
        "except LedgerError as exc:\n"
        "    print(exc)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert shown.startswith(
        "postgresql://ann@db.example/ws: a PostgreSQL ledger needs psycopg: "
        "install campaign-runner[postgres] ("
    )
    assert "s3cret" not in shown
