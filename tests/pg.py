"""A throwaway PostgreSQL cluster for the tests that need one, started by the tests themselves.

A test module (or conftest) uses it with `pytest_plugins = ["pg"]`, then asks for the fixtures:

    pg_cluster    the cluster of this test run (one per xdist worker): made with Debian's initdb in a
                  temporary folder, listening only on a unix socket in that folder, stopped at the end.
                  As root it runs as the `postgres` user (initdb refuses root). Missing binaries or
                  psycopg: skipped, or a one-line failure when CI is set (scripts/test.sh installs them).
    pg_url        a new empty database on it for one test, dropped afterwards (its SQLAlchemy URL).
    any_database  parametrized: an SQLite file, then a PostgreSQL database; the `env` fixture writes it
                  as `database_url`, so a module with `pytestmark = pytest.mark.usefixtures("any_database")`
                  runs every test on both.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MISSING = "PostgreSQL is missing: run scripts/test.sh, which installs it"
USER = "rrdalarm"
PORT = 5432  # only names the socket file: the cluster listens on no TCP port


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing(what: str) -> None:
    """Nothing to test with: a failure on CI (where scripts/test.sh installs it), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(MISSING, pytrace=False)
    pytest.skip(f"{what} is missing (scripts/test.sh installs PostgreSQL and psycopg)")


@dataclass
class Cluster:
    """A running cluster: its folder (data, socket, log) and how to reach it."""

    base: Path
    bin: Path
    owner: str | None  # the user it runs as when the tests run as root
    names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.base}&port={PORT}"

    def run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.base)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync",
                 "--no-instructions")
        # Durability buys nothing in a throwaway cluster; the socket lives in its folder.
        options = (f"-k {self.base} -p {PORT} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.base), port=PORT, user=USER, dbname="postgres", autocommit=True) as c:
            c.execute(sql.encode())

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self.names)}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        missing("the postgres user")
        raise  # not reached


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One cluster per test session (and xdist worker), stopped and removed at the end."""
    try:
        import psycopg  # noqa: F401 - only whether it is there
    except ImportError:
        missing("psycopg")
    found = bin_dir()
    if found is None:
        missing("PostgreSQL (initdb)")
        raise AssertionError(MISSING)  # not reached
    owner = _owner()
    base = Path(tempfile.mkdtemp(prefix="rrdalarm-pg-"))
    if owner is not None:
        shutil.chown(base, owner, owner)
    cluster = Cluster(base, found, owner)
    try:
        cluster.start()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A new empty PostgreSQL database for this test."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/rrdalarm.db"
    return str(request.getfixturevalue("pg_url"))
