"""PostgreSQL 15 from Debian with TimescaleDB (built here) and PostGIS.

The cluster has its own data directory, port and unix-socket folder under the stack
folder and listens on loopback only. PostgreSQL refuses to run as root, so under root
the cluster belongs to and runs as the ``postgres`` OS user. Authentication is
``trust`` for local sockets and 127.0.0.1: this is a development stack on loopback,
never a deployment. The bootstrap superuser is ``postgres``; ``up`` creates the roles
of docs/security.md and the database, and brings existing roles to those attributes:

* ``database.owner_user`` (``ioc``): owns the database and schema, runs migrations;
  NOSUPERUSER, CREATEDB (tests create their own databases);
* ``database.user`` (``ioc_app``): the application, member of ``ioc_writer``: rows
  only (the grants are in migration 0015);
* ``ioc_grafana``: Grafana, member of ``ioc_reader``: SELECT on the dashboards' relations.

The ``timescaledb`` and ``postgis`` extensions are created in ``template1`` as well, so
databases created by the owner (tests) have them without superuser rights.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from ioccore.settings import DatabaseSettings
from iocdev.errors import StackError
from iocdev.stack import timescale
from iocdev.stack.ready import port_open, wait_until
from iocdev.stack.service import Service

PG_MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
PG_CONFIG = str(PG_BIN / "pg_config")
BOOTSTRAP_USER = "postgres"
WRITER_GROUP = "ioc_writer"
READER_GROUP = "ioc_reader"
GRAFANA_USER = "ioc_grafana"
HBA = """# Managed by `ioc stack up`: DEVELOPMENT ONLY. Trust on the unix socket and 127.0.0.1:
# any local OS user can log in as any role (docs/security.md). Never listen elsewhere.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
"""
SERVER_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "timescaledb",
    "timescaledb.telemetry_level": "off",
    "timescaledb.max_background_workers": "8",
    "max_worker_processes": "16",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


class Postgres(Service):
    name = "postgres"
    packages = (f"postgresql-{PG_MAJOR}", f"postgresql-{PG_MAJOR}-postgis-3",
                *timescale.BUILD_PACKAGES)
    stop_signal = signal.SIGINT  # "fast" shutdown: do not wait for clients to leave
    start_timeout = 60.0

    @property
    def port(self) -> int:
        return self.settings.database.port

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.layout.run / "postgres"

    @property
    def user(self) -> str | None:
        return BOOTSTRAP_USER if os.geteuid() == 0 else None

    def install(self) -> None:
        timescale.build_and_install(self.layout.build / "timescaledb",
                                    pg_config_bin=PG_CONFIG,
                                    log=self.layout.log("timescaledb"))

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run_as_owner(self, argv: list[str]) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== {' '.join(argv)}\n".encode())
            out.flush()
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=self.home, user=self.user,
                                  group=self.user, check=False).returncode
        if code != 0:
            raise StackError(self.name, f"`{' '.join(argv)}` failed with code {code}",
                             str(self.log))

    def prepare(self) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(self.host)).is_loopback:
            raise StackError(self.name, f"stack.host {self.host} is not a loopback address: "
                             "the local stack trusts every connection (development only)")
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.home)
        self._chown(self.socket_dir)
        if self.user is not None:
            probe = subprocess.run(["test", "-w", str(self.home)], user=self.user,
                                   check=False)
            if probe.returncode != 0:
                raise StackError(self.name, f"the {self.user} OS user cannot write to "
                                 f"{self.home}: every parent folder must be searchable "
                                 "by it (chmod o+x)", str(self.log))
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)  # a half-done initdb
            self._run_as_owner([str(PG_BIN / "initdb"), "-D", str(self.data),
                                "-U", BOOTSTRAP_USER, "--auth=trust", "-E", "UTF8",
                                "--locale=C.UTF-8"])
        hba = self.data / "pg_hba.conf"
        hba.write_text(HBA)
        self._chown(hba)

    def argv(self) -> list[str]:
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data),
                "-c", f"port={self.port}", "-c", f"listen_addresses={self.host}",
                "-c", f"unix_socket_directories={self.socket_dir}"]
        for key, value in SERVER_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def conninfo(self, *, user: str, dbname: str) -> str:
        return (f"host={self.host} port={self.port} user={user} dbname={dbname} "
                "connect_timeout=3 application_name=ioc-stack")

    def probe(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        import psycopg

        db = self.settings.database
        try:
            with psycopg.connect(db.conninfo() + " connect_timeout=3") as conn:
                one = conn.execute("SELECT 1").fetchone()
                license_row = conn.execute("SHOW timescaledb.license").fetchone()
        except psycopg.Error:
            return False
        return one == (1,) and license_row is not None

    def bootstrap(self) -> None:
        """Create (or bring to their attributes) the roles, the database, the extensions."""
        import psycopg
        from psycopg import sql

        db = self.settings.database
        roles = [(WRITER_GROUP, "NOLOGIN"), (READER_GROUP, "NOLOGIN"),
                 (db.owner_user, "LOGIN CREATEDB"), (db.user, "LOGIN"),
                 (GRAFANA_USER, "LOGIN")]
        admin = self.conninfo(user=BOOTSTRAP_USER, dbname="postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            for role, attrs in roles:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (role,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} " + attrs)
                                 .format(sql.Identifier(role)))
                conn.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEROLE NOBYPASSRLS "
                                     + attrs).format(sql.Identifier(role)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(WRITER_GROUP),
                                                          sql.Identifier(db.user)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READER_GROUP),
                                                          sql.Identifier(GRAFANA_USER)))
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (db.dbname,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(db.dbname), sql.Identifier(db.owner_user)))
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(db.dbname), sql.Identifier(db.owner_user)))
        for dbname in ("template1", db.dbname):
            with psycopg.connect(self.conninfo(user=BOOTSTRAP_USER, dbname=dbname),
                                 autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def wait_ready(self, pid: int | None) -> float:
        import psycopg

        def accepting() -> bool:
            if not port_open(self.host, self.port):
                return False
            try:
                with psycopg.connect(self.conninfo(user=BOOTSTRAP_USER, dbname="postgres")):
                    return True
            except psycopg.OperationalError:
                return False

        waited = wait_until(self.name, accepting, log=self.log, timeout=self.start_timeout,
                            pid=pid, what="did not accept connections")
        try:
            self.bootstrap()
        except psycopg.Error as exc:
            raise StackError(self.name, f"creating role/database/extensions failed: {exc}",
                             str(self.log)) from exc
        return waited + wait_until(self.name, self.probe, log=self.log, timeout=30, pid=pid,
                                   what="SQL query or SHOW timescaledb.license failed")


def drop_database(database: DatabaseSettings, name: str) -> None:
    """Drop ``name`` as the owner; when other roles' sessions are still connected (a
    worker as the application role, or a stopped one's backend still closing), only a
    superuser may force them off, and the local stack's bootstrap superuser (trust on
    loopback, development only) does it then."""
    import psycopg
    from psycopg import sql

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        with psycopg.connect(database.owner_conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(drop)
    except psycopg.errors.InsufficientPrivilege:
        superuser = database.model_copy(update={"owner_user": BOOTSTRAP_USER,
                                                "owner_password": None})
        with psycopg.connect(superuser.owner_conninfo(dbname="postgres"),
                             autocommit=True) as conn:
            conn.execute(drop)
